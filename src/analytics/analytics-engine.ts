import { z } from "zod";
import { AppError } from "../errors";
import { requestsByDaySql, upstreamByMinuteSql, warmByHourSql } from "./ae-sql";
import { type EventsBackend, type ProviderDay, toHourlyWarm, type UpstreamMinute } from "./backend";

export interface AnalyticsEngineOptions {
  accountId: string;
  /** An API token with Account Analytics: Read. */
  token: string;
  dataset: string;
  /** Default https://api.cloudflare.com/client/v4; tests point it at their stand-in. */
  apiBase?: string;
  /** Injected so tests answer for the SQL API in process (no network). */
  fetch?: typeof fetch;
  timeoutMs?: number;
}

/** The SQL API's JSON (FORMAT JSON): ClickHouse's shape. 64-bit numbers may arrive as strings. */
const sqlResponse = z.object({
  meta: z.array(z.object({ name: z.string(), type: z.string() })).optional(),
  data: z.array(z.record(z.string(), z.unknown())),
  rows: z.number().optional(),
});

/** "2026-12-02 01:00:00" (AE's DateTime, UTC) or epoch seconds → epoch ms. */
const aeHour = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const ms =
    typeof value === "number" || /^\d+$/.test(value)
      ? Number(value) * 1000
      : Date.parse(`${value.replace(" ", "T")}${/Z|[+-]\d\d:?\d\d$/.test(value) ? "" : "Z"}`);
  if (!Number.isFinite(ms)) ctx.addIssue({ code: "custom", message: `not a time: ${value}` });
  return ms;
});

const warmRow = z.object({
  hour: aeHour,
  invocations: z.coerce.number(),
  authors_processed: z.coerce.number(),
  works_cached: z.coerce.number(),
  failed: z.coerce.number(),
  retried: z.coerce.number(),
  subrequests: z.coerce.number(),
});

const upstreamRow = z.object({
  minute: aeHour,
  openlibrary_requests: z.coerce.number(),
  openlibrary_errors: z.coerce.number(),
  openlibrary_throttled: z.coerce.number(),
  googlebooks_requests: z.coerce.number(),
  googlebooks_errors: z.coerce.number(),
  googlebooks_throttled: z.coerce.number(),
});

/** AE's one row per minute (a column per provider × count) as D1's one row per minute × provider. */
function unpivot(raw: Record<string, unknown>): UpstreamMinute[] {
  const r = upstreamRow.parse(raw);
  const rows: UpstreamMinute[] = [
    {
      minute: r.minute,
      provider: "openlibrary",
      requests: r.openlibrary_requests,
      errors: r.openlibrary_errors,
      throttled: r.openlibrary_throttled,
    },
    {
      minute: r.minute,
      provider: "googlebooks",
      requests: r.googlebooks_requests,
      errors: r.googlebooks_errors,
      throttled: r.googlebooks_throttled,
    },
  ];
  return rows.filter((row) => row.requests > 0);
}

const dayRow = z.object({
  day: aeHour,
  openlibrary_requests: z.coerce.number(),
  googlebooks_requests: z.coerce.number(),
});

function unpivotDay(raw: Record<string, unknown>): ProviderDay[] {
  const r = dayRow.parse(raw);
  const rows: ProviderDay[] = [
    { day: r.day, provider: "openlibrary", requests: r.openlibrary_requests },
    { day: r.day, provider: "googlebooks", requests: r.googlebooks_requests },
  ];
  return rows.filter((row) => row.requests > 0);
}

function unavailable(message: string): AppError {
  return new AppError({ code: "analytics_unavailable", message, httpStatus: 502, kind: "transient" });
}

/** Runs one SQL statement on the SQL API and gives its rows. */
export async function runAeSql(
  options: AnalyticsEngineOptions,
  sql: string,
): Promise<Record<string, unknown>[]> {
  const base = options.apiBase ?? "https://api.cloudflare.com/client/v4";
  const url = `${base}/accounts/${encodeURIComponent(options.accountId)}/analytics_engine/sql`;
  let response: Response;
  try {
    response = await (options.fetch ?? fetch)(url, {
      method: "POST",
      headers: { Authorization: `Bearer ${options.token}`, "Content-Type": "text/plain" },
      body: sql,
      signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
    });
  } catch (error) {
    throw unavailable(`Analytics Engine SQL API unreachable: ${String(error)}`);
  }
  const text = await response.text();
  if (!response.ok)
    throw unavailable(`Analytics Engine SQL API answered ${response.status}: ${text.slice(0, 300)}`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw unavailable(`Analytics Engine SQL API answered something other than JSON: ${text.slice(0, 300)}`);
  }
  const parsed = sqlResponse.safeParse(json);
  if (!parsed.success) throw unavailable(`unexpected Analytics Engine answer: ${parsed.error.message}`);
  return parsed.data.data;
}

/** Production backend: the per-invocation data points, read through the SQL API. */
export function analyticsEngineEvents(options: AnalyticsEngineOptions): EventsBackend {
  return {
    name: "analytics-engine",
    async warmByHour(_start, hours) {
      const rows = await runAeSql(options, warmByHourSql(options.dataset, hours));
      return rows.map((raw) => toHourlyWarm(warmRow.parse(raw)));
    },
    async requestsByDay(_start, days) {
      return (await runAeSql(options, requestsByDaySql(options.dataset, days))).flatMap(unpivotDay);
    },
    async upstreamByMinute(_start, minutes) {
      const rows = await runAeSql(options, upstreamByMinuteSql(options.dataset, minutes));
      return rows.flatMap(unpivot);
    },
  };
}
