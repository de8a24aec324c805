import { z } from "zod";

/** Typed view of the `[vars]` and secrets in wrangler.toml; every knob has a default here. */
const flag = (fallback: "true" | "false") =>
  z
    .enum(["true", "false", "1", "0"])
    .default(fallback)
    .transform((v) => v === "true" || v === "1");
const positiveNumber = (fallback: number) => z.coerce.number().positive().default(fallback);
const nonNegativeNumber = (fallback: number) => z.coerce.number().min(0).default(fallback);

const configSchema = z.object({
  ENVIRONMENT: z.string().default("production"),
  API_TOKEN: z.string().optional(),
  /** Read-only token: job lists, progress, failures and the dashboard's data, no changes. */
  READ_TOKEN: z.string().optional(),
  /** Signs per-job read links; rotating it revokes every link (default: derived from API_TOKEN). */
  JOB_LINK_SECRET: z.string().optional(),
  /** Upstream misses the public read API may cause per client, and for all clients together, per minute. */
  PUBLIC_READ_MISSES_PER_MINUTE: nonNegativeNumber(10),
  PUBLIC_READ_MISSES_GLOBAL_PER_MINUTE: nonNegativeNumber(60),
  OPENLIBRARY_BASE_URL: z.string().url().default("https://openlibrary.org"),
  OPENLIBRARY_ENABLED: flag("true"),
  OPENLIBRARY_RATE_PER_SECOND: nonNegativeNumber(3),
  GOOGLE_BOOKS_BASE_URL: z.string().url().default("https://www.googleapis.com"),
  GOOGLE_BOOKS_ENABLED: flag("true"),
  GOOGLE_BOOKS_RATE_PER_SECOND: nonNegativeNumber(1),
  /** Google Books requests per day (its quota day ends at midnight Pacific time); 0 = unlimited. */
  GOOGLE_BOOKS_DAILY_QUOTA: nonNegativeNumber(1000),
  /** Open Library requests per (UTC) day; 0 = unlimited, the default. */
  OPENLIBRARY_DAILY_QUOTA: nonNegativeNumber(0),
  GOOGLE_BOOKS_API_KEY: z.string().optional(),
  /** complement: Google Books only for ISBNs and authors Open Library has nothing for; always: every item. */
  GOOGLE_BOOKS_ROLE: z.enum(["complement", "always"]).default("complement"),
  USER_AGENT_CONTACT: z.string().default("ops@kindling.example"),
  MAX_WORKS_PER_AUTHOR: positiveNumber(200),
  /** Authors per OR-combined Open Library query (1 = one author per request, the old way). */
  OPENLIBRARY_AUTHORS_PER_REQUEST: z.coerce.number().int().min(1).max(10).default(10),
  /** ISBNs per Open Library lookup (1 = one ISBN per request). */
  OPENLIBRARY_ISBNS_PER_REQUEST: z.coerce.number().int().min(1).max(25).default(25),
  UPSTREAM_TIMEOUT_MS: positiveNumber(10_000),
  RETRY_BASE_SECONDS: nonNegativeNumber(5),
  RETRY_MAX_SECONDS: nonNegativeNumber(600),
  SUBREQUEST_BUDGET: positiveNumber(50),
  KV_OPERATION_BUDGET: positiveNumber(1000),
  DLQ_ALERT_THRESHOLD: positiveNumber(10),
  UPLOAD_MAX_BYTES: positiveNumber(50 * 1024 * 1024),
  UPLOAD_MAX_ROWS: positiveNumber(200_000),
  /**
   * Backpressure (#13 item 3): an upload is refused (429 backlog_full) while the open jobs' work would take
   * longer than this to drain at Open Library's rate; `high` uploads may go past it by the (smaller) bypass.
   */
  BACKLOG_LIMIT_SECONDS: nonNegativeNumber(3600),
  BACKLOG_HIGH_BYPASS_SECONDS: nonNegativeNumber(900),
  /** Open Library requests one open task costs (measured: grouped queries take ~0.19 per author). */
  BACKLOG_REQUESTS_PER_TASK: positiveNumber(0.19),
  CONSUMER_CONCURRENCY: positiveNumber(10),
  KV_WRITE_CONCURRENCY: positiveNumber(50),
  STALL_SECONDS: positiveNumber(900),
  MAX_DELIVERIES: positiveNumber(4),
  /** Hard cap on deliveries of one task, crashes included: past it a dead letter is final regardless. */
  MAX_TOTAL_ATTEMPTS: positiveNumber(12),
  BREAKER_FAILURE_THRESHOLD: positiveNumber(5),
  BREAKER_COOLDOWN_SECONDS: nonNegativeNumber(15),
  EXHAUSTED_GRACE_SECONDS: positiveNumber(3600),
  /** A job's Workflow (#12): how long one warm check step watches D1, and how often it looks. */
  WARM_WATCH_SECONDS: positiveNumber(30),
  WARM_POLL_MS: positiveNumber(1000),
  /** Nothing of a job moved for this long with items open: its messages were lost, re-admit them. */
  WARM_STALL_SECONDS: positiveNumber(60),
  /**
   * Admission (#13): work items of one job in flight (queued/running) at most, and across all jobs, for each
   * kind (authors and ISBN items have queues, and so windows, of their own). Unset,
   * the window follows Open Library's rate (admission.ts `admissionLimits`): the in-flight work is what the
   * provider can take in ADMISSION_LOOKAHEAD_SECONDS, since everything in flight is queued ahead of a newly
   * admitted (higher-priority) job's first items.
   */
  ADMISSION_WINDOW: z.coerce.number().int().positive().optional(),
  ADMISSION_LOOKAHEAD_SECONDS: positiveNumber(2),
  ADMISSION_GLOBAL_CAP: positiveNumber(1000),
  /** Done items whose cache entries verify checks. */
  VERIFY_SAMPLE_SIZE: nonNegativeNumber(200),
  /** Scheduled refresh (README, "Scheduled refresh"): re-warms what expires within the horizon, hourly. */
  REFRESH_ENABLED: flag("true"),
  REFRESH_HORIZON_HOURS: positiveNumber(6),
  /** Items (authors and ISBN items) one refresh run may re-warm. */
  REFRESH_MAX_ITEMS: z.coerce.number().int().positive().default(500),
  /** Only items an upload asked for within this many days are refreshed. */
  REFRESH_RECENT_DAYS: positiveNumber(30),
  /** Share of each provider's daily quota a refresh leaves to uploads: below it, the run is skipped. */
  REFRESH_QUOTA_RESERVE: z.coerce.number().min(0).max(1).default(0.2),
  /** false: a refresh rewrites every entry, changed or not (the bench's full re-warm; an escape hatch). */
  REFRESH_DIFF: flag("true"),
  /** Analytics Engine SQL API (secrets): with both set, the analytics routes read AE instead of D1. */
  ANALYTICS_ACCOUNT_ID: z.string().optional(),
  ANALYTICS_READ_TOKEN: z.string().optional(),
  ANALYTICS_DATASET: z.string().default("kindling_warming"),
  ANALYTICS_API_BASE: z.string().url().optional(),
});

export type Config = z.infer<typeof configSchema> & {
  userAgent: string;
  isDevelopment: boolean;
};

export function loadConfig(env: Partial<Record<keyof z.input<typeof configSchema>, unknown>>): Config {
  const parsed = configSchema.parse(env);
  return {
    ...parsed,
    userAgent: `Kindling/0.1 (+https://github.com/kindling; ${parsed.USER_AGENT_CONTACT})`,
    isDevelopment: parsed.ENVIRONMENT !== "production",
  };
}

/**
 * Workers Paid list prices in USD per million operations, for the per-job cost estimate (README, "Cost per
 * job": source developers.cloudflare.com pricing pages, as of 2026-12-02). Included monthly allowances are
 * not subtracted: the estimate is what the job's operations cost at the margin.
 */
export const PRICE_TABLE = {
  queueOperationsPerMillion: 0.4,
  kvReadsPerMillion: 0.5,
  kvWritesPerMillion: 5,
  d1RowsReadPerMillion: 0.001,
  d1RowsWrittenPerMillion: 1,
} as const;

/**
 * Job priorities' weights, shared by admission (which job's items enter the queue next) and the provider
 * scheduler (which waiting request gets the next slot): under contention a level gets its weight's share.
 */
export const PRIORITY_WEIGHTS = { high: 4, normal: 2, low: 1 } as const;
export type Priority = keyof typeof PRIORITY_WEIGHTS;
