import { z } from "zod";
import type { JobRow } from "../types";

const countRow = z.object({ status: z.string(), n: z.coerce.number(), last: z.coerce.number().nullable() });

export interface JobSnapshot {
  job: JobRow;
  /** Task rows by status (the truth the counters must agree with). */
  byStatus: Record<string, number>;
  total: number;
  open: number;
  /** The newest task `updated_at`: when anything of this job last moved. */
  lastMovedAt: number;
}

/** The job row and its task rows by status, in one round trip. */
export async function readJobSnapshot(db: D1Database, jobId: string): Promise<JobSnapshot | null> {
  const [jobResult, countResult] = await db.batch([
    db.prepare("SELECT * FROM jobs WHERE id = ?1").bind(jobId),
    db
      .prepare(
        "SELECT status, COUNT(*) AS n, MAX(updated_at) AS last FROM tasks WHERE job_id = ?1 GROUP BY status",
      )
      .bind(jobId),
  ]);
  const job = (jobResult?.results[0] as JobRow | undefined) ?? null;
  if (!job) return null;
  const rows = (countResult?.results ?? []).map((r) => countRow.parse(r));
  const byStatus = Object.fromEntries(rows.map((r) => [r.status, r.n]));
  const open = ["pending", "queued", "running"].reduce((sum, s) => sum + (byStatus[s] ?? 0), 0);
  return {
    job,
    byStatus,
    total: rows.reduce((sum, r) => sum + r.n, 0),
    open,
    lastMovedAt: Math.max(job.created_at, ...rows.map((r) => r.last ?? 0)),
  };
}
