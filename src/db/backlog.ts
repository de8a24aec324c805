import { z } from "zod";

/** The open work of every queued or running job, summed from the jobs' counters (no task is read). */
export interface BacklogRow {
  /** Tasks pending, queued or running across those jobs. */
  openTasks: number;
  /** Jobs queued or running (paused, cancelled, failed and finished jobs hold no backlog). */
  openJobs: number;
  /** The job already stored under the upload's Idempotency-Key, if any (a replay stores nothing). */
  existingJobId: string | null;
}

const rowSchema = z.object({
  open_tasks: z.number().int().nullable(),
  open_jobs: z.number().int(),
  existing_job_id: z.string().nullable(),
});

/**
 * One query on the `jobs_open` partial index: each open job's open tasks are its total less everything
 * that finished (done, skipped, failed, dead, cancelled); a job whose ingest has not yet written its tasks
 * counts the items its upload planned (`root_tasks`). The idempotency lookup rides along so a replay is
 * recognised without a second round trip.
 */
export async function readBacklog(db: D1Database, idempotencyKey: string | null): Promise<BacklogRow> {
  const row = await db
    .prepare(
      `SELECT SUM(MAX(0, MAX(total_tasks, root_tasks) - done_count - skipped_count - failed_count - dead_count - cancelled_count))
                AS open_tasks,
              COUNT(*) AS open_jobs,
              (SELECT id FROM jobs WHERE idempotency_key = ?1) AS existing_job_id
         FROM jobs WHERE status IN ('queued', 'running')`,
    )
    .bind(idempotencyKey)
    .first();
  const parsed = rowSchema.parse(row);
  return {
    openTasks: parsed.open_tasks ?? 0,
    openJobs: parsed.open_jobs,
    existingJobId: parsed.existing_job_id,
  };
}
