import type { Artifact, Stage, StageStatus } from "../../jobs/stages";
import { writeOnly } from "../step";

/**
 * A stage starts: RUNNING, its times and results cleared (a rerun starts clean). Guarded so that a stage
 * already ended by an operator (CANCELLED) is not revived by a late workflow step.
 */
export function startStage(db: D1Database, jobId: string, stage: Stage, now: number) {
  return writeOnly([
    db
      .prepare(
        `UPDATE job_stages SET status = 'RUNNING', started_at = ?3, ended_at = NULL, message = NULL,
           counts = NULL, artifact_key = NULL, artifact_sha256 = NULL, artifact_bytes = NULL
         WHERE job_id = ?1 AND stage = ?2 AND status IN ('PENDING', 'RUNNING', 'FAILED')`,
      )
      .bind(jobId, stage, now),
  ]);
}

export interface StageEnd {
  status: Extract<StageStatus, "SUCCESS" | "FAILED" | "SKIPPED">;
  message?: string | null;
  counts?: Record<string, number> | null;
  artifact?: Artifact | null;
}

/** A stage ends (only a RUNNING or PENDING one: a CANCELLED stage stays cancelled). */
export function endStage(db: D1Database, jobId: string, stage: Stage, end: StageEnd, now: number) {
  return writeOnly([
    db
      .prepare(
        `UPDATE job_stages SET status = ?3, ended_at = ?4, started_at = COALESCE(started_at, ?4),
           message = ?5, counts = ?6, artifact_key = ?7, artifact_sha256 = ?8, artifact_bytes = ?9
         WHERE job_id = ?1 AND stage = ?2 AND status IN ('PENDING', 'RUNNING')`,
      )
      .bind(
        jobId,
        stage,
        end.status,
        now,
        end.message ?? null,
        end.counts ? JSON.stringify(end.counts) : null,
        end.artifact?.key ?? null,
        end.artifact?.sha256 ?? null,
        end.artifact?.bytes ?? null,
      ),
  ]);
}

/** Later stages that never ran after a failure are SKIPPED. */
export function skipPendingStages(db: D1Database, jobId: string, now: number) {
  return writeOnly([
    db
      .prepare(
        `UPDATE job_stages SET status = 'SKIPPED', ended_at = ?2 WHERE job_id = ?1 AND status = 'PENDING'`,
      )
      .bind(jobId, now),
  ]);
}

/** A rerun: the chosen stage and every later one go back to PENDING. */
export function resetStagesFrom(db: D1Database, jobId: string, stages: readonly Stage[]) {
  return writeOnly([
    db
      .prepare(
        `UPDATE job_stages SET status = 'PENDING', started_at = NULL, ended_at = NULL, message = NULL,
           counts = NULL, artifact_key = NULL, artifact_sha256 = NULL, artifact_bytes = NULL
         WHERE job_id = ?1 AND stage IN (SELECT value FROM json_each(?2))`,
      )
      .bind(jobId, JSON.stringify(stages)),
  ]);
}

/** A long stage is alive: its heartbeat (read by the cron's lifecycle pass). */
export function touchStage(db: D1Database, jobId: string, stage: Stage, now: number) {
  return writeOnly([
    db
      .prepare(
        "UPDATE job_stages SET heartbeat_at = ?3 WHERE job_id = ?1 AND stage = ?2 AND status = 'RUNNING'",
      )
      .bind(jobId, stage, now),
  ]);
}
