import { z } from "zod";
import type { JobCounters } from "../warm/usage";

/** The invocation's tries per provider, added to its minute's row. */
export function upsertUpstreamMinuteStatements(
  db: D1Database,
  minute: number,
  rows: readonly { provider: string; requests: number; errors: number; throttled: number }[],
): D1PreparedStatement[] {
  return rows.map((r) =>
    db
      .prepare(
        `INSERT INTO upstream_minutes (minute, provider, requests, errors, throttled) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (minute, provider) DO UPDATE SET requests = requests + excluded.requests,
           errors = errors + excluded.errors, throttled = throttled + excluded.throttled`,
      )
      .bind(minute, r.provider, r.requests, r.errors, r.throttled),
  );
}

const COLUMNS: [keyof JobCounters, string][] = [
  ["invocations", "invocations"],
  ["queueSent", "queue_sent"],
  ["queueDelivered", "queue_delivered"],
  ["queueRetried", "queue_retried"],
  ["queueAcked", "queue_acked"],
  ["kvReads", "kv_reads"],
  ["kvWrites", "kv_writes"],
  ["d1RowsRead", "d1_rows_read"],
  ["d1RowsWritten", "d1_rows_written"],
  ["openlibraryRequests", "openlibrary_requests"],
  ["googlebooksRequests", "googlebooks_requests"],
];

const UPSERT_JOB_COSTS = `INSERT INTO job_costs (job_id, ${COLUMNS.map((c) => c[1]).join(", ")})
  VALUES (?1, ${COLUMNS.map((_, i) => `?${i + 2}`).join(", ")})
  ON CONFLICT (job_id) DO UPDATE SET ${COLUMNS.map(([, c]) => `${c} = ${c} + excluded.${c}`).join(", ")}`;

/** Adds each job's counters of one invocation to its row. */
export function upsertJobCostsStatements(
  db: D1Database,
  jobs: ReadonlyMap<string, JobCounters>,
): D1PreparedStatement[] {
  return [...jobs].map(([jobId, c]) =>
    db.prepare(UPSERT_JOB_COSTS).bind(jobId, ...COLUMNS.map(([k]) => c[k])),
  );
}

const jobCostsRow = z.object(Object.fromEntries(COLUMNS.map(([, c]) => [c, z.coerce.number()])));

/** A job's counters (all zero before its first consumer invocation). */
export async function jobCounters(db: D1Database, jobId: string): Promise<JobCounters> {
  const row = await db.prepare("SELECT * FROM job_costs WHERE job_id = ?1").bind(jobId).first();
  const parsed = row ? jobCostsRow.parse(row) : null;
  return Object.fromEntries(COLUMNS.map(([k, c]) => [k, parsed?.[c] ?? 0])) as unknown as JobCounters;
}

const minuteRow = z.object({
  minute: z.coerce.number(),
  provider: z.string(),
  requests: z.coerce.number(),
  errors: z.coerce.number(),
  throttled: z.coerce.number(),
});

export const UPSTREAM_BY_MINUTE_SQL = `SELECT minute, provider, requests, errors, throttled
FROM upstream_minutes WHERE minute >= ?1 ORDER BY minute, provider`;

export const REQUESTS_BY_DAY_SQL = `SELECT (minute / 86400000) * 86400000 AS day, provider, SUM(requests) AS requests
FROM upstream_minutes WHERE minute >= ?1 GROUP BY 1, 2 ORDER BY 1, 2`;

const dayRow = z.object({ day: z.coerce.number(), provider: z.string(), requests: z.coerce.number() });

export async function requestsByDay(db: D1Database, start: number): Promise<z.infer<typeof dayRow>[]> {
  const { results } = await db.prepare(REQUESTS_BY_DAY_SQL).bind(start).all();
  return results.map((r) => dayRow.parse(r));
}

export async function upstreamByMinute(db: D1Database, start: number): Promise<z.infer<typeof minuteRow>[]> {
  const { results } = await db.prepare(UPSTREAM_BY_MINUTE_SQL).bind(start).all();
  return results.map((r) => minuteRow.parse(r));
}
