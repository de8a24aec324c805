/** Admitted tasks: the ones with a message (or a parked one), as opposed to `pending` ones waiting for admission. */
const IN_FLIGHT_SQL = "('queued', 'running')";

import { MESSAGE_COLUMNS, type StaleTask, staleTaskRow } from "./queries";

/**
 * Every admitted task of one job handed to a fresh message (a resumed job): the generation goes up, so any
 * copy parked or still in flight from before is dropped as obsolete, and nothing is warmed twice. At most a
 * window of them (admission never let more in); pending tasks wait for admission as before the pause.
 */
export async function bumpOpenTasksOfJob(db: D1Database, jobId: string, now: number): Promise<StaleTask[]> {
  const { results } = await db
    .prepare(
      `UPDATE tasks SET generation = generation + 1, updated_at = ?2
       WHERE job_id = ?1 AND status IN ${IN_FLIGHT_SQL}
       RETURNING ${MESSAGE_COLUMNS}`,
    )
    .bind(jobId, now)
    .all();
  return results.map((row) => staleTaskRow.parse(row));
}

/**
 * The admitted tasks of one job when nothing of it has moved for `stallSeconds` (its messages were lost):
 * the sweeper's stall rule (take-stalled.ts) for a single job, so its Workflow re-admits them within a
 * minute instead of waiting for the sweep. `updated_at` is touched so the next check waits again.
 */
export async function takeStalledTasksOfJob(
  db: D1Database,
  jobId: string,
  now: number,
  stallSeconds: number,
  limit: number,
): Promise<StaleTask[]> {
  const { results } = await db
    .prepare(
      `UPDATE tasks SET updated_at = ?3
       FROM (SELECT t.author_key AS a FROM tasks AS t JOIN jobs ON jobs.id = t.job_id
             WHERE t.job_id = ?1 AND jobs.status IN ('queued', 'running') AND t.status IN ${IN_FLIGHT_SQL}
               AND NOT EXISTS (SELECT 1 FROM tasks AS recent WHERE recent.job_id = ?1 AND recent.updated_at >= ?2)
             LIMIT ?4) AS m
       WHERE tasks.job_id = ?1 AND tasks.author_key = m.a
       RETURNING ${MESSAGE_COLUMNS}`,
    )
    .bind(jobId, now - stallSeconds * 1000, now, limit)
    .all();
  return results.map((row) => staleTaskRow.parse(row));
}
