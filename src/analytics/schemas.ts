import { z } from "zod";

/**
 * The analytics API's answers. Both backends (D1 locally, Analytics Engine in production) produce exactly
 * these shapes; the routes validate them before answering and the OpenAPI document is generated from them.
 */
const hour = z.iso.datetime().describe("Start of the hour, UTC (ISO 8601)");

export const throughputRow = z.object({
  hour,
  authorsProcessed: z.number().describe("Tasks that reached a terminal state (done, skipped or failed)"),
  worksCached: z.number().describe("Works written to the cache"),
  invocations: z.number().describe("Consumer invocations"),
});
export const failuresRow = z.object({
  hour,
  failed: z.number().describe("Tasks failed for good (their own failures, or dead letters)"),
  retried: z.number().describe("Deliveries sent round again"),
  subrequests: z.number().describe("Upstream requests made by the consumer"),
});
export const cacheRow = z.object({
  hour,
  hits: z.number(),
  misses: z.number(),
  rate: z.number().nullable().describe("hits / (hits + misses), null when there were no reads"),
});

const series = <T extends z.ZodType>(row: T) =>
  z.object({
    backend: z.enum(["d1", "analytics-engine"]),
    hours: z.number().int(),
    rows: z.array(row).describe("One row per hour, oldest first, hours without data as zeros"),
  });
export const throughputSeries = series(throughputRow);
export const failuresSeries = series(failuresRow);
export const cacheSeries = series(cacheRow).extend({
  totals: z.object({ hits: z.number(), misses: z.number(), rate: z.number().nullable() }),
});

export const dlqDepth = z.object({
  count: z.number().int().describe("Tasks currently dead across all jobs"),
  threshold: z.number().describe("DLQ_ALERT_THRESHOLD"),
  alert: z.boolean().describe("count > threshold"),
});
export const backlog = z.object({
  queue: z
    .object({ backlogCount: z.number(), backlogBytes: z.number(), oldestMessageAt: z.string().nullable() })
    .nullable()
    .describe("Queue.metrics() of the warm queue, null where the runtime does not support it"),
  tasks: z
    .object({ pending: z.number(), queued: z.number(), running: z.number() })
    .describe("Open tasks in D1 (the truth, whatever the queue says)"),
});
export const upstreamRow = z.object({
  minute: z.iso.datetime().describe("Start of the minute, UTC (ISO 8601)"),
  provider: z.enum(["openlibrary", "googlebooks"]),
  requests: z.number().describe("Upstream tries (inline retries included)"),
  errors: z.number().describe("Tries not answered 2xx (timeouts and network errors included)"),
  throttled: z.number().describe("Tries answered 429 (daily-quota refusals included)"),
});
export const upstreamSeries = z.object({
  backend: z.enum(["d1", "analytics-engine"]),
  minutes: z.number().int(),
  rows: z.array(upstreamRow).describe("Minutes in which a provider was asked, oldest first"),
});

export const quotaUsedRow = z.object({
  day: z.iso.datetime().describe("Start of the UTC day (ISO 8601)"),
  provider: z.enum(["openlibrary", "googlebooks"]),
  requests: z.number().describe("Upstream tries that day"),
  limit: z.number().nullable().describe("The provider's configured daily quota; null when unlimited"),
});
export const quotaUsedSeries = z.object({
  backend: z.enum(["d1", "analytics-engine"]),
  days: z.number().int(),
  rows: z.array(quotaUsedRow).describe("Days in which a provider was asked, oldest first"),
});

export const overview = z.object({
  backend: z.enum(["d1", "analytics-engine"]),
  throughput: throughputSeries,
  failures: failuresSeries,
  cache: cacheSeries,
  dlq: dlqDepth,
  backlog,
  upstream: upstreamSeries,
});

export type ThroughputRow = z.infer<typeof throughputRow>;
export type FailuresRow = z.infer<typeof failuresRow>;
export type CacheRow = z.infer<typeof cacheRow>;
export type BackendName = z.infer<typeof overview>["backend"];
