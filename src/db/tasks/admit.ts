import { z } from "zod";
import { rowsOf, type Step } from "../step";
import { type StaleTask, staleTaskRow } from "./queries";

/** Jobs whose tasks may be admitted: never paused, cancelled, failed or finished ones. */
const ADMITTING = "('queued', 'running')";
const IN_FLIGHT = "('queued', 'running')";

const stateRow = z.object({
  id: z.string(),
  priority: z.string(),
  created_at: z.coerce.number(),
  in_flight: z.coerce.number(),
  pending: z.coerce.number(),
});
export type AdmissionStateRow = z.infer<typeof stateRow>;

/**
 * Every admitting job with its tasks in flight and its pending tasks counted up to `window` (a job never
 * takes more than a window at once, so a 100,000-task job costs at most `window` rows here, not all of them).
 * Driven from the jobs' status index, each job's counts from the (job, status) task index.
 */
export function readAdmissionState(db: D1Database, window: number): Step<AdmissionStateRow[]> {
  const statement = db
    .prepare(
      `SELECT j.id, j.priority, j.created_at,
         (SELECT COUNT(*) FROM tasks AS t WHERE t.job_id = j.id AND t.status IN ${IN_FLIGHT}) AS in_flight,
         (SELECT COUNT(*) FROM (SELECT 1 FROM tasks AS t WHERE t.job_id = j.id AND t.status = 'pending' LIMIT ?1)) AS pending
       FROM jobs AS j WHERE j.status IN ${ADMITTING}`,
    )
    .bind(Math.max(1, Math.floor(window)));
  return { statements: [statement], read: (results) => rowsOf(stateRow, results) };
}

export interface AdmissionGrant {
  jobId: string;
  count: number;
}

/**
 * Claims pending tasks for admission: `pending` → `queued`, oldest level first. Each job's statement takes
 * at most its grant, and never more than its window or the global cap leave free *at the moment it runs*
 * (the in-flight counts are subqueries of the same statement, and the statements run in one transaction),
 * and nothing of a job that is not queued or running: concurrent admitters can never overfill a window or
 * claim a task twice (a claimed task is no longer pending). Reads back what each claim took (the rows the
 * messages are built from).
 */
export function claimAdmissions(
  db: D1Database,
  grants: readonly AdmissionGrant[],
  limits: { window: number; globalCap: number },
  now: number,
): Step<StaleTask[]> {
  const statements = grants
    .filter((g) => g.count > 0)
    .map((g) =>
      db
        .prepare(
          `UPDATE tasks SET status = 'queued', updated_at = ?5
           WHERE job_id = ?1 AND status = 'pending' AND author_key IN (
             SELECT t.author_key FROM tasks AS t
             WHERE t.job_id = ?1 AND t.status = 'pending'
               AND (SELECT status FROM jobs WHERE id = ?1) IN ${ADMITTING}
             ORDER BY t.depth, t.author_key
             LIMIT MAX(0, MIN(?2,
               ?3 - (SELECT COUNT(*) FROM tasks WHERE job_id = ?1 AND status IN ${IN_FLIGHT}),
               ?4 - (SELECT COUNT(*) FROM jobs AS j JOIN tasks AS f ON f.job_id = j.id AND f.status IN ${IN_FLIGHT}
                     WHERE j.status IN ${ADMITTING}))))
           RETURNING job_id, author_key, author_name, depth, generation,
             (SELECT max_depth FROM jobs WHERE jobs.id = tasks.job_id) AS max_depth`,
        )
        .bind(g.jobId, Math.floor(g.count), Math.floor(limits.window), Math.floor(limits.globalCap), now),
    );
  return { statements, read: (results) => rowsOf(staleTaskRow, results) };
}
