import { hourlyChart } from "./charts.js";
import { apiJson, fillBody, jobLink, progressBar, row, runPage, showMessage, when } from "./common.js";

const $ = (id) => document.getElementById(id);

function renderHealth(health) {
  $("health").textContent = health ? health.status : "unreachable";
  $("health").className = `value ${health?.status === "ok" ? "ok" : "bad"}`;
  if (!health) return;
  const checks = Object.entries(health.checks).map(([name, c]) => `${name} ${c.ok ? "ok" : "failing"}`);
  $("health-detail").textContent = checks.join(" · ");
  const breakers = Object.entries(health.breakers ?? {}).map(([name, b]) =>
    row([
      name,
      b.state,
      `${b.consecutiveFailures} consecutive failures${b.openUntil ? `, open until ${new Date(b.openUntil).toLocaleTimeString()}` : ""}`,
    ]),
  );
  fillBody($("breakers"), breakers, "no breakers reported", 3);
}

function renderQuotas(health) {
  const quotas = health?.quotas;
  const rows = quotas
    ? Object.entries(quotas).map(([name, q]) =>
        row(
          [
            name,
            q.used,
            q.limit ?? "none",
            q.exhausted ? "exhausted" : "available",
            new Date(q.resetAt).toLocaleString(),
          ],
          [1, 2],
        ),
      )
    : [];
  fillBody($("quotas"), rows, "quotas not reported", 5);
}

/** The API's rows (minute × provider, idle minutes left out) as one row per minute of the window. */
function perMinute(upstream, now) {
  const end = Math.floor(now / 60_000) * 60_000;
  const byMinute = new Map();
  for (let i = upstream.minutes - 1; i >= 0; i--) {
    const minute = new Date(end - i * 60_000).toISOString();
    byMinute.set(minute, { minute, openlibrary: 0, openlibrary429: 0, googlebooks: 0, googlebooks429: 0 });
  }
  for (const r of upstream.rows) {
    const m = byMinute.get(r.minute);
    if (!m) continue;
    m[r.provider] += r.requests;
    m[`${r.provider}429`] += r.throttled;
  }
  return [...byMinute.values()];
}

function renderState({ dlq, backlog, cache }) {
  $("dlq").textContent = String(dlq.count);
  $("card-dlq").classList.toggle("alert", dlq.alert);
  $("dlq-detail").textContent = dlq.alert
    ? `ALERT: above the threshold of ${dlq.threshold} — inspect failures and retry`
    : `alert above ${dlq.threshold}`;
  const { pending, queued, running } = backlog.tasks;
  $("backlog").textContent = String(pending + queued + running);
  $("backlog-detail").textContent =
    `${pending} pending · ${queued} queued · ${running} running` +
    (backlog.queue ? ` · queue backlog ${backlog.queue.backlogCount}` : "");
  const rate = cache.totals.rate;
  $("hit-rate").textContent = rate === null ? "no reads" : `${Math.round(rate * 1000) / 10}%`;
  $("hit-detail").textContent = `${cache.totals.hits} hits · ${cache.totals.misses} misses`;
}

function renderCharts({ backend, throughput, failures, cache, upstream }) {
  $("backend").textContent = `(from ${backend === "d1" ? "D1" : "Analytics Engine"})`;
  hourlyChart($("chart-throughput"), throughput.rows, [
    { field: "authorsProcessed", label: "authors processed", color: "#e8590c" },
    { field: "worksCached", label: "works cached", color: "#1971c2" },
  ]);
  hourlyChart($("chart-failures"), failures.rows, [
    { field: "failed", label: "failed", color: "#e03131" },
    { field: "retried", label: "retried", color: "#f59f00" },
  ]);
  hourlyChart($("chart-upstream"), failures.rows, [
    { field: "subrequests", label: "upstream requests", color: "#7048e8" },
  ]);
  hourlyChart(
    $("chart-providers"),
    perMinute(upstream, Date.now()),
    [
      { field: "openlibrary", label: "Open Library requests", color: "#1098ad" },
      { field: "openlibrary429", label: "Open Library 429s", color: "#c2255c" },
      { field: "googlebooks", label: "Google Books requests", color: "#5c940d" },
      { field: "googlebooks429", label: "Google Books 429s", color: "#f76707" },
    ],
    "minute",
  );
  hourlyChart($("chart-cache"), cache.rows, [
    { field: "hits", label: "hits", color: "#2b8a3e" },
    { field: "misses", label: "misses", color: "#868e96" },
  ]);
}

function renderJobs(jobs) {
  const rows = jobs.map((j) =>
    row(
      [
        jobLink(j),
        j.status,
        progressBar(j.tasks ? Math.floor((j.finished / j.tasks) * 100) : 0),
        j.tasks,
        j.failed,
        j.worksCached,
        when(j.createdAt),
      ],
      [3, 4, 5],
    ),
  );
  fillBody($("jobs"), rows, "no jobs yet", 7);
}

async function refresh() {
  const [overview, jobs, health] = await Promise.all([
    apiJson("/api/analytics/overview?hours=24"),
    apiJson("/api/jobs?limit=10"),
    fetch("/health").then(
      (r) => r.json(),
      () => null,
    ),
  ]);
  renderHealth(health);
  renderQuotas(health);
  renderState(overview);
  renderCharts(overview);
  renderJobs(jobs.jobs);
  showMessage(`updated ${new Date().toLocaleTimeString()}`);
}

runPage(refresh, 5000);
