import { writeOnly } from "../step";

/**
 * A rerun of a job that a gate failed: it goes back to what its tasks say (completed, with errors or not),
 * so the rerun's verify and publish judge it again. Other states are left alone.
 */
export function reopenFailedJob(db: D1Database, jobId: string, now: number) {
  return writeOnly([
    db
      .prepare(
        `UPDATE jobs SET status = CASE WHEN failed_count + dead_count > 0 THEN 'completed_with_errors' ELSE 'completed' END,
           updated_at = ?2
         WHERE id = ?1 AND status = 'failed'`,
      )
      .bind(jobId, now),
  ]);
}
