import { z } from "zod";
import { rowsOf, type Step } from "../step";
import { TASK_KINDS, type TaskKind } from "../types";
import { MESSAGE_COLUMNS, type StaleTask, staleTaskRow } from "./queries";

/** Jobs whose tasks may be admitted: never paused, cancelled, failed or finished ones. */
const ADMITTING = "('queued', 'running')";
const IN_FLIGHT = "('queued', 'running')";

const stateRow = z.object({
  id: z.string(),
  kind: z.enum(TASK_KINDS),
  priority: z.string(),
  created_at: z.coerce.number(),
  in_flight: z.coerce.number(),
  pending: z.coerce.number(),
});
export type AdmissionStateRow = z.infer<typeof stateRow>;

/**
 * Every admitting job, once per work-item kind, with its tasks of that kind in flight and its pending ones
 * counted up to the kind's window (a job never takes more than a window at once, so a 100,000-task job costs
 * at most a window of rows here, not all of them). Driven from the jobs' status index, each count from the
 * (job, status, kind) task index.
 */
export function readAdmissionState(
  db: D1Database,
  windows: Record<TaskKind, number>,
): Step<AdmissionStateRow[]> {
  const perKind = TASK_KINDS.map(
    (kind, i) =>
      `SELECT j.id, '${kind}' AS kind, j.priority, j.created_at,
         (SELECT COUNT(*) FROM tasks AS t WHERE t.job_id = j.id AND t.status IN ${IN_FLIGHT} AND t.kind = '${kind}') AS in_flight,
         (SELECT COUNT(*) FROM (SELECT 1 FROM tasks AS t WHERE t.job_id = j.id AND t.status = 'pending' AND t.kind = '${kind}' LIMIT ?${i + 1})) AS pending
       FROM jobs AS j WHERE j.status IN ${ADMITTING}`,
  );
  const statement = db
    .prepare(perKind.join(" UNION ALL "))
    .bind(...TASK_KINDS.map((kind) => Math.max(1, Math.floor(windows[kind]))));
  return { statements: [statement], read: (results) => rowsOf(stateRow, results) };
}

export interface AdmissionGrant {
  jobId: string;
  kind: TaskKind;
  count: number;
}

/**
 * Claims pending tasks for admission: `pending` → `queued`, oldest level first. Each (job, kind) statement
 * takes at most its grant, and never more than the kind's window or global cap leave free *at the moment it runs*
 * (the in-flight counts are subqueries of the same statement, and the statements run in one transaction),
 * and nothing of a job that is not queued or running: concurrent admitters can never overfill a window or
 * claim a task twice (a claimed task is no longer pending). Reads back what each claim took (the rows the
 * messages are built from).
 */
export function claimAdmissions(
  db: D1Database,
  grants: readonly AdmissionGrant[],
  limits: Record<TaskKind, { window: number; globalCap: number }>,
  now: number,
): Step<StaleTask[]> {
  const statements = grants
    .filter((g) => g.count > 0)
    .map((g) =>
      db
        .prepare(
          `UPDATE tasks SET status = 'queued', updated_at = ?5
           WHERE job_id = ?1 AND status = 'pending' AND kind = ?6 AND author_key IN (
             SELECT t.author_key FROM tasks AS t
             WHERE t.job_id = ?1 AND t.status = 'pending' AND t.kind = ?6
               AND (SELECT status FROM jobs WHERE id = ?1) IN ${ADMITTING}
             ORDER BY t.depth, t.author_key
             LIMIT MAX(0, MIN(?2,
               ?3 - (SELECT COUNT(*) FROM tasks WHERE job_id = ?1 AND status IN ${IN_FLIGHT} AND kind = ?6),
               ?4 - (SELECT COUNT(*) FROM jobs AS j JOIN tasks AS f ON f.job_id = j.id AND f.status IN ${IN_FLIGHT}
                     AND f.kind = ?6 WHERE j.status IN ${ADMITTING}))))
           RETURNING ${MESSAGE_COLUMNS}`,
        )
        .bind(
          g.jobId,
          Math.floor(g.count),
          Math.floor(limits[g.kind].window),
          Math.floor(limits[g.kind].globalCap),
          now,
          g.kind,
        ),
    );
  return { statements, read: (results) => rowsOf(staleTaskRow, results) };
}
