import { z } from "zod";
import { STAGE_STATUSES, STAGES, type Stage, type StageRecord, type StageStatus } from "../../jobs/stages";
import { rowsOf, type Step } from "../step";

const stageRow = z.object({
  job_id: z.string(),
  stage: z.enum(STAGES),
  status: z.enum(STAGE_STATUSES),
  started_at: z.number().nullable(),
  ended_at: z.number().nullable(),
  message: z.string().nullable(),
  counts: z.string().nullable(),
  artifact_key: z.string().nullable(),
  artifact_sha256: z.string().nullable(),
  artifact_bytes: z.number().nullable(),
  heartbeat_at: z.number().nullable(),
});
export type StageRow = z.infer<typeof stageRow>;

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function stageRecord(row: StageRow): StageRecord {
  return {
    stage: row.stage,
    status: row.status,
    startedAt: iso(row.started_at),
    endedAt: iso(row.ended_at),
    message: row.message,
    counts: row.counts ? (JSON.parse(row.counts) as Record<string, number>) : null,
    artifact:
      row.artifact_key && row.artifact_sha256
        ? { key: row.artifact_key, sha256: row.artifact_sha256, bytes: row.artifact_bytes ?? 0 }
        : null,
  };
}

/** A new job's four stage rows, all PENDING: written in the job's own creation batch. */
export function insertStagesStatement(db: D1Database, jobId: string): D1PreparedStatement {
  return db
    .prepare(
      `INSERT OR IGNORE INTO job_stages (job_id, stage, position)
       SELECT ?1, value ->> 's', value ->> 'p' FROM json_each(?2)`,
    )
    .bind(jobId, JSON.stringify(STAGES.map((s, p) => ({ s, p }))));
}

export function listStagesStatement(db: D1Database, jobId: string): D1PreparedStatement {
  return db.prepare("SELECT * FROM job_stages WHERE job_id = ?1 ORDER BY position").bind(jobId);
}

export function listStages(db: D1Database, jobId: string): Step<StageRow[]> {
  return { statements: [listStagesStatement(db, jobId)], read: (r) => rowsOf(stageRow, r) };
}

/** The current stage: the first that is not SUCCESS (or the last, when every stage is). */
export function currentStage(rows: readonly StageRow[]): { stage: Stage; status: StageStatus } | null {
  const open = rows.find((r) => r.status !== "SUCCESS") ?? rows.at(-1);
  return open ? { stage: open.stage, status: open.status } : null;
}
