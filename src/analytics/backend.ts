import type { BackendName } from "./schemas";

/** One hour of consumer invocations, summed (both backends decode their rows into this). */
export interface HourlyWarm {
  /** Start of the hour, epoch ms. */
  hour: number;
  invocations: number;
  authorsProcessed: number;
  worksCached: number;
  failed: number;
  retried: number;
  subrequests: number;
}

/** The SQL column names both backends select (`warm_events` in D1, the AE dataset's doubles). */
export interface WarmHourColumns {
  hour: number;
  invocations: number;
  authors_processed: number;
  works_cached: number;
  failed: number;
  retried: number;
  subrequests: number;
}

export function toHourlyWarm(r: WarmHourColumns): HourlyWarm {
  return {
    hour: r.hour,
    invocations: r.invocations,
    authorsProcessed: r.authors_processed,
    worksCached: r.works_cached,
    failed: r.failed,
    retried: r.retried,
    subrequests: r.subrequests,
  };
}

/** One provider's upstream tries in one minute. */
export interface UpstreamMinute {
  /** Start of the minute, epoch ms. */
  minute: number;
  provider: "openlibrary" | "googlebooks";
  requests: number;
  errors: number;
  throttled: number;
}

/** One provider's requests in one UTC day. */
export interface ProviderDay {
  /** Start of the UTC day, epoch ms. */
  day: number;
  provider: "openlibrary" | "googlebooks";
  requests: number;
}

/**
 * Where the per-invocation events are read from: D1's warm_events locally and in tests, Analytics Engine's
 * SQL API in production. Current state (dead letters, backlog) and the read API's cache_stats live in D1
 * under both, so only the event queries differ.
 */
export interface EventsBackend {
  readonly name: BackendName;
  /** Seed 001's dashboard query and the failure counts, per hour, for the window starting at `start`. */
  warmByHour(start: number, hours: number): Promise<HourlyWarm[]>;
  /** Upstream tries, errors and 429s per provider per minute since `start` (a provider's idle minutes left out). */
  upstreamByMinute(start: number, minutes: number): Promise<UpstreamMinute[]>;
  /** Requests per provider per UTC day since `start` (a provider's idle days left out). */
  requestsByDay(start: number, days: number): Promise<ProviderDay[]>;
}
