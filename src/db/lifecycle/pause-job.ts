import { z } from "zod";
import { rowsOf, type Step } from "../step";

const statusRow = z.object({ status: z.string() });

/** queued|running → paused. Returns null when the job was not in a state that can pause. */
export function pauseJob(db: D1Database, jobId: string, now: number): Step<string | null> {
  return {
    statements: [
      db
        .prepare(
          `UPDATE jobs SET status = 'paused', updated_at = ?2
           WHERE id = ?1 AND status IN ('queued', 'running') RETURNING status`,
        )
        .bind(jobId, now),
    ],
    read: (results) => rowsOf(statusRow, results)[0]?.status ?? null,
  };
}
