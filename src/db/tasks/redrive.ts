import { z } from "zod";
import { rowsOf, type Step } from "../step";

const candidateRow = z.object({
  author_key: z.string(),
  author_name: z.string(),
  depth: z.coerce.number(),
  generation: z.coerce.number(),
});
export type RedriveCandidate = z.infer<typeof candidateRow>;

/**
 * Re-opens a job's failed and dead tasks: counters move back in the same batch, attempts restart at 0,
 * the old outcome is appended to the task's history, and the job is running again. A job whose ingest
 * succeeded (#12) warms again, so its warm, verify and publish stages go back to PENDING in the same
 * transaction: an end or gate of the run before, still in flight, then finds its stage reset and is dropped
 * instead of failing the job under the tasks just re-opened. Reads back the re-opened tasks; the caller
 * sends their messages after.
 */
export function redriveTasks(db: D1Database, jobId: string, now: number): Step<RedriveCandidate[]> {
  const statements = [
    db
      .prepare(
        `UPDATE job_stages SET status = 'PENDING', started_at = NULL, ended_at = NULL, message = NULL,
           counts = NULL, artifact_key = NULL, artifact_sha256 = NULL, artifact_bytes = NULL
         WHERE job_id = ?1 AND stage IN ('warm', 'verify', 'publish')
           AND EXISTS (SELECT 1 FROM job_stages WHERE job_id = ?1 AND stage = 'ingest' AND status = 'SUCCESS')
           AND EXISTS (SELECT 1 FROM tasks WHERE job_id = ?1 AND status IN ('failed', 'dead'))`,
      )
      .bind(jobId),
    db
      .prepare(
        `UPDATE jobs SET
           failed_count = failed_count - (SELECT COUNT(*) FROM tasks WHERE job_id = ?1 AND status = 'failed'),
           dead_count = dead_count - (SELECT COUNT(*) FROM tasks WHERE job_id = ?1 AND status = 'dead'),
           status = 'running', completed_at = NULL, updated_at = ?2
         WHERE id = ?1 AND EXISTS (SELECT 1 FROM tasks WHERE job_id = ?1 AND status IN ('failed', 'dead'))`,
      )
      .bind(jobId, now),
    db
      .prepare(
        `UPDATE tasks SET
           history = json_insert(COALESCE(history, '[]'), '$[#]',
             json_object('status', status, 'error', error, 'attempts', attempts, 'failures', failures, 'at', updated_at)),
           status = 'pending', attempts = 0, failures = 0, error = NULL, finished_at = NULL, updated_at = ?2
         WHERE job_id = ?1 AND status IN ('failed', 'dead')
         RETURNING author_key, author_name, depth, generation`,
      )
      .bind(jobId, now),
  ];
  return { statements, read: (results) => rowsOf(candidateRow, results.slice(2)) };
}
