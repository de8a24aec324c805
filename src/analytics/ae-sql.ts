/**
 * The Analytics Engine data point the warm and dead-letter consumers write once per invocation
 * (src/warm/metrics.ts), and the SQL that reads it back. The layout is the contract between the two:
 *
 *   index1  queue name (the sampling key)
 *   blob1   queue name ("author-warming-queue" or "author-warming-dlq")
 *   double1 messages in the batch      double5 deliveries retried
 *   double2 tasks done                 double6 works cached
 *   double3 tasks skipped              double7 upstream subrequests
 *   double4 tasks failed (for good)    double8 invocation duration, ms
 *   double9  openlibrary tries         double12 googlebooks tries
 *   double10 openlibrary errors        double13 googlebooks errors   (non-2xx, timeouts, network errors)
 *   double11 openlibrary 429s          double14 googlebooks 429s     (daily-quota refusals included)
 *
 * AE samples rows under load: every sum is weighted by `_sample_interval` (a row standing for n rows has
 * _sample_interval = n), and a count is `SUM(_sample_interval)`, never `count()`.
 */
export const AE_DOUBLES = {
  messages: "double1",
  done: "double2",
  skipped: "double3",
  failed: "double4",
  retried: "double5",
  works: "double6",
  subrequests: "double7",
  durationMs: "double8",
  openlibraryRequests: "double9",
  openlibraryErrors: "double10",
  openlibraryThrottled: "double11",
  googlebooksRequests: "double12",
  googlebooksErrors: "double13",
  googlebooksThrottled: "double14",
} as const;

/** AE dataset names are identifiers in the SQL: anything else is refused before it gets there. */
export function assertDataset(dataset: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(dataset))
    throw new Error(`invalid Analytics Engine dataset name: ${dataset}`);
  return dataset;
}

const weighted = (expr: string) => `SUM(_sample_interval * (${expr}))`;

/**
 * Seed 001's dashboard query ("authors processed and works cached per hour over the last 24 h") for AE,
 * with failures, retries and upstream requests in the same scan. `hours` is a validated integer.
 */
export function warmByHourSql(dataset: string, hours: number): string {
  if (!Number.isInteger(hours) || hours < 1)
    throw new Error(`hours must be a positive integer, got ${hours}`);
  const d = AE_DOUBLES;
  return [
    "SELECT",
    "  toStartOfHour(timestamp) AS hour,",
    "  SUM(_sample_interval) AS invocations,",
    `  ${weighted(`${d.done} + ${d.skipped} + ${d.failed}`)} AS authors_processed,`,
    `  ${weighted(d.works)} AS works_cached,`,
    `  ${weighted(d.failed)} AS failed,`,
    `  ${weighted(d.retried)} AS retried,`,
    `  ${weighted(d.subrequests)} AS subrequests`,
    `FROM ${assertDataset(dataset)}`,
    `WHERE timestamp > NOW() - INTERVAL '${hours}' HOUR`,
    "GROUP BY hour",
    "ORDER BY hour",
    "FORMAT JSON",
  ].join("\n");
}

/** Requests per provider per UTC day (the "quota used" history; the live quota day is /health's). */
export function requestsByDaySql(dataset: string, days: number): string {
  if (!Number.isInteger(days) || days < 1) throw new Error(`days must be a positive integer, got ${days}`);
  const d = AE_DOUBLES;
  return [
    "SELECT",
    "  toStartOfDay(timestamp) AS day,",
    `  ${weighted(d.openlibraryRequests)} AS openlibrary_requests,`,
    `  ${weighted(d.googlebooksRequests)} AS googlebooks_requests`,
    `FROM ${assertDataset(dataset)}`,
    `WHERE timestamp > NOW() - INTERVAL '${days}' DAY`,
    "GROUP BY day",
    "ORDER BY day",
    "FORMAT JSON",
  ].join("\n");
}

/** Upstream tries, errors and 429s per provider per minute (one column per provider × count). */
export function upstreamByMinuteSql(dataset: string, minutes: number): string {
  if (!Number.isInteger(minutes) || minutes < 1)
    throw new Error(`minutes must be a positive integer, got ${minutes}`);
  const d = AE_DOUBLES;
  return [
    "SELECT",
    "  toStartOfInterval(timestamp, INTERVAL '1' MINUTE) AS minute,",
    `  ${weighted(d.openlibraryRequests)} AS openlibrary_requests,`,
    `  ${weighted(d.openlibraryErrors)} AS openlibrary_errors,`,
    `  ${weighted(d.openlibraryThrottled)} AS openlibrary_throttled,`,
    `  ${weighted(d.googlebooksRequests)} AS googlebooks_requests,`,
    `  ${weighted(d.googlebooksErrors)} AS googlebooks_errors,`,
    `  ${weighted(d.googlebooksThrottled)} AS googlebooks_throttled`,
    `FROM ${assertDataset(dataset)}`,
    `WHERE timestamp > NOW() - INTERVAL '${minutes}' MINUTE`,
    "GROUP BY minute",
    "ORDER BY minute",
    "FORMAT JSON",
  ].join("\n");
}
