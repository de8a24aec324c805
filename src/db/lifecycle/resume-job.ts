import { z } from "zod";
import { rowsOf, type Step } from "../step";

const statusRow = z.object({ status: z.string() });

/** paused → running (or queued when nothing had started). Returns null when the job was not paused. */
export function resumeJob(db: D1Database, jobId: string, now: number): Step<string | null> {
  return {
    statements: [
      db
        .prepare(
          `UPDATE jobs SET status = CASE WHEN started_at IS NULL THEN 'queued' ELSE 'running' END, updated_at = ?2
           WHERE id = ?1 AND status = 'paused' RETURNING status`,
        )
        .bind(jobId, now),
    ],
    read: (results) => rowsOf(statusRow, results)[0]?.status ?? null,
  };
}
