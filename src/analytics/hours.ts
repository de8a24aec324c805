export const HOUR_MS = 3_600_000;

/** The first hour of a window of `hours` whole hours that ends with the current one. */
export function windowStart(now: number, hours: number): number {
  return Math.floor(now / HOUR_MS) * HOUR_MS - (hours - 1) * HOUR_MS;
}

/**
 * Exactly `hours` rows, oldest first, one per hour of the window: hours the backend had no data for are
 * zeros, rows outside the window are dropped. Charts and both backends rely on this fixed shape.
 */
export function fillHours<T extends { hour: number }, R>(
  rows: readonly T[],
  start: number,
  hours: number,
  row: (hour: number, found: T | undefined) => R,
): R[] {
  const byHour = new Map(rows.map((r) => [r.hour, r]));
  return Array.from({ length: hours }, (_, i) => {
    const hour = start + i * HOUR_MS;
    return row(hour, byHour.get(hour));
  });
}
