import type { WarmEvent } from "../db/events";
import type { UpstreamTally } from "../sources/tally";

export type InvocationMetrics = WarmEvent;

export function emptyMetrics(batch: MessageBatch<unknown>): InvocationMetrics {
  return {
    queue: batch.queue,
    messages: batch.messages.length,
    done: 0,
    skipped: 0,
    failed: 0,
    retried: 0,
    works: 0,
    subrequests: 0,
    durationMs: 0,
  };
}

/**
 * One Analytics Engine data point per consumer invocation, whatever the batch size: the platform
 * allows 25 per invocation, so points are aggregated, never written per message or per work.
 * (Locally writeDataPoint is a no-op; the same numbers go to D1's warm_events.)
 */
export function writeAnalyticsPoint(env: Env, metrics: InvocationMetrics, upstream: UpstreamTally): void {
  const ol = upstream.byProvider.openlibrary;
  const gb = upstream.byProvider.googlebooks;
  try {
    // Layout documented in src/analytics/ae-sql.ts (AE_DOUBLES): the SQL there reads these positions.
    env.WARMING_ANALYTICS?.writeDataPoint({
      indexes: [metrics.queue],
      blobs: [metrics.queue],
      doubles: [
        metrics.messages,
        metrics.done,
        metrics.skipped,
        metrics.failed,
        metrics.retried,
        metrics.works,
        metrics.subrequests,
        metrics.durationMs,
        ol.requests,
        ol.errors,
        ol.throttled,
        gb.requests,
        gb.errors,
        gb.throttled,
      ],
    });
  } catch (error) {
    console.warn(JSON.stringify({ msg: "analytics write failed", error: String(error) }));
  }
}
