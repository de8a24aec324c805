import { z } from "zod";

const HOUR_MS = 3_600_000;

const warmHourRow = z.object({
  hour: z.coerce.number(),
  invocations: z.coerce.number(),
  authors_processed: z.coerce.number(),
  works_cached: z.coerce.number(),
  failed: z.coerce.number(),
  retried: z.coerce.number(),
  subrequests: z.coerce.number(),
});
export type WarmHourRow = z.infer<typeof warmHourRow>;

/**
 * Seed 001's dashboard query over D1's warm_events (one row per consumer invocation): authors processed
 * (terminal outcomes) and works cached per hour, with failures, retries and upstream requests beside them.
 */
export async function warmEventsByHour(db: D1Database, since: number): Promise<WarmHourRow[]> {
  const { results } = await db
    .prepare(
      `SELECT (at / ${HOUR_MS}) * ${HOUR_MS} AS hour,
              COUNT(*) AS invocations,
              SUM(done + skipped + failed) AS authors_processed,
              SUM(works) AS works_cached,
              SUM(failed) AS failed,
              SUM(retried) AS retried,
              SUM(subrequests) AS subrequests
       FROM warm_events WHERE at >= ?1 GROUP BY hour ORDER BY hour`,
    )
    .bind(since)
    .all();
  return results.map((row) => warmHourRow.parse(row));
}

const openTasksRow = z.object({ status: z.string(), n: z.coerce.number() });

/**
 * Open tasks by state: the backlog as D1 knows it. Only unfinished jobs are looked at, through the
 * (job_id, status) index, so finished jobs' millions of tasks cost nothing.
 */
export async function openTaskCounts(
  db: D1Database,
): Promise<{ pending: number; queued: number; running: number }> {
  const { results } = await db
    .prepare(
      `SELECT status, COUNT(*) AS n FROM tasks
       WHERE job_id IN (SELECT id FROM jobs WHERE status NOT IN ('completed', 'completed_with_errors', 'cancelled', 'failed'))
         AND status IN ('pending', 'queued', 'running')
       GROUP BY status`,
    )
    .all();
  const counts = { pending: 0, queued: 0, running: 0 };
  for (const row of results.map((r) => openTasksRow.parse(r))) {
    if (row.status === "pending" || row.status === "queued" || row.status === "running")
      counts[row.status] = row.n;
  }
  return counts;
}
