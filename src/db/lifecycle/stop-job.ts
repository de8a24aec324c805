import { z } from "zod";
import { rowsOf, type Step } from "../step";
import { OPEN_SQL } from "../types";

export type StopStatus = "cancelled" | "failed";

const stoppedRow = z.object({ status: z.string(), closed: z.coerce.number() });

/**
 * Stops a job (an operator's cancel, or a failed gate): the job ends `cancelled` or `failed`, every open
 * task ends `cancelled` with `cancelled_count` moved by exactly the rows closed (the counter runs first and
 * counts only open rows, as in finish.ts), the running stage is CANCELLED (a gate failure has already
 * marked its own stage FAILED) and stages that never ran are SKIPPED. One D1 batch, one transaction.
 * Repeating it is harmless: a stopped job only has late co-author rows (if any) closed and counted.
 */
export function stopJob(
  db: D1Database,
  jobId: string,
  to: StopStatus,
  now: number,
): Step<{ closed: number } | null> {
  // A gate may fail after the tasks finished (verify), so `failed` also ends a completed job.
  const stoppable =
    to === "cancelled"
      ? "('queued', 'running', 'paused')"
      : "('queued', 'running', 'paused', 'completed', 'completed_with_errors')";
  return {
    statements: [
      db
        .prepare(
          `UPDATE jobs SET
             cancelled_count = cancelled_count + (SELECT COUNT(*) FROM tasks WHERE job_id = ?1 AND status IN ${OPEN_SQL}),
             status = CASE WHEN status IN ${stoppable} THEN ?3 ELSE status END,
             completed_at = CASE WHEN status IN ${stoppable} THEN ?2 ELSE completed_at END,
             updated_at = ?2
           WHERE id = ?1 AND (status IN ${stoppable} OR status = ?3)
           RETURNING status, (SELECT COUNT(*) FROM tasks WHERE job_id = ?1 AND status IN ${OPEN_SQL}) AS closed`,
        )
        .bind(jobId, now, to),
      db
        .prepare(
          `UPDATE tasks SET status = 'cancelled', finished_at = ?2, updated_at = ?2,
             error = COALESCE(error, ?3)
           WHERE job_id = ?1 AND status IN ${OPEN_SQL}
             AND (SELECT status FROM jobs WHERE id = ?1) IN ('cancelled', 'failed')`,
        )
        .bind(jobId, now, to === "cancelled" ? "cancelled by operator" : "job failed a gate"),
      db
        .prepare(
          `UPDATE job_stages SET
             status = CASE WHEN status = 'RUNNING' THEN 'CANCELLED' ELSE 'SKIPPED' END,
             ended_at = ?2, started_at = COALESCE(started_at, ?2)
           WHERE job_id = ?1 AND status IN ('RUNNING', 'PENDING')
             AND (SELECT status FROM jobs WHERE id = ?1) IN ('cancelled', 'failed')`,
        )
        .bind(jobId, now),
    ],
    read: (results) => {
      const row = rowsOf(stoppedRow, results.slice(0, 1))[0];
      return row ? { closed: row.closed } : null;
    },
  };
}
