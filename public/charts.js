// Hourly series drawn with uPlot (public/vendor/uplot, copied from node_modules at build time).
const charts = new Map();

/**
 * Draws (or updates) one chart of hourly rows (or of any rows with an ISO time in `timeField`). `series`
 * maps row fields to a label and a colour. The container records how many points it drew and how many were
 * non-zero (data-points, data-nonzero).
 */
export function hourlyChart(container, rows, series, timeField = "hour") {
  const xs = rows.map((r) => Date.parse(r[timeField]) / 1000);
  const data = [xs, ...series.map((s) => rows.map((r) => r[s.field] ?? null))];
  const nonzero = data.slice(1).reduce((n, ys) => n + ys.filter((y) => y !== null && y !== 0).length, 0);
  container.dataset.points = String(xs.length);
  container.dataset.nonzero = String(nonzero);
  container.dataset.colors = series.map((s) => s.color).join(" ");
  const existing = charts.get(container);
  if (existing) {
    existing.setData(data);
    return existing;
  }
  const width = Math.max(320, container.clientWidth - 16);
  const plot = new uPlot(
    {
      width,
      height: 190,
      scales: { x: { time: true } },
      series: [
        {},
        ...series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: 2,
          fill: `${s.color}22`,
          points: { show: true },
        })),
      ],
      axes: [{}, { size: 50 }],
    },
    data,
    container,
  );
  charts.set(container, plot);
  return plot;
}
