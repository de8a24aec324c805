import type { z } from "zod";
import { appendLog } from "../db/lifecycle/job-log";
import { endStage, startStage } from "../db/lifecycle/stage-transitions";
import { listStages, type StageRow, stageRecord } from "../db/lifecycle/stages";
import { stopJob } from "../db/lifecycle/stop-job";
import { runSteps } from "../db/step";
import type { JobRow } from "../db/types";
import { readArtifact } from "./artifacts";
import { ARTIFACT_CONTRACTS, STAGES, type Stage } from "./stages";

export type GateDecision =
  | { action: "run" }
  | { action: "skip" }
  | { action: "stop"; reason: string }
  | { action: "blocked"; message: string };

/**
 * Whether `stage` may start: the previous stage is SUCCESS and its artifact is in R2 with the recorded
 * sha256 and valid against its zod contract. A stage already SUCCESS whose own artifact still validates is
 * skipped (a restarted or rerun instance resumes after it).
 */
export async function decideGate(env: Env, jobId: string, stage: Stage): Promise<GateDecision> {
  const job = await env.DB.prepare("SELECT status FROM jobs WHERE id = ?1")
    .bind(jobId)
    .first<Pick<JobRow, "status">>();
  if (!job) return { action: "stop", reason: "job not found" };
  if (job.status === "cancelled" || job.status === "failed")
    return { action: "stop", reason: `job ${job.status}` };
  const [rows] = await runSteps(env.DB, [listStages(env.DB, jobId)]);
  const row = (s: Stage) => rows.find((r) => r.stage === s);
  const own = row(stage);
  if (!own) return { action: "stop", reason: "job has no stage rows" };
  if (own.status === "SUCCESS" && (await artifactValid(env, own)) === null) return { action: "skip" };
  const previous = STAGES[STAGES.indexOf(stage) - 1];
  if (!previous) return { action: "run" };
  const before = row(previous);
  // Sequential runs leave the previous stage ended; PENDING or RUNNING means an operator's redrive or rerun
  // reset it after this run passed it: this run is stale, and the restarted one owns the stages.
  if (before?.status === "PENDING" || before?.status === "RUNNING")
    return { action: "stop", reason: `stale run: ${previous} is ${before.status} again` };
  if (before?.status !== "SUCCESS")
    return {
      action: "blocked",
      message: `gate ${previous}_status: ${previous} is ${before?.status ?? "missing"}, not SUCCESS`,
    };
  const invalid = await artifactValid(env, before);
  if (invalid) return { action: "blocked", message: `gate ${previous}_${invalid}` };
  return { action: "run" };
}

/** null when the stage's artifact validates; else the failed check and what it saw. */
export async function artifactValid(env: Env, row: StageRow): Promise<string | null> {
  const contract: z.ZodType<unknown> = ARTIFACT_CONTRACTS[row.stage];
  const check = await readArtifact(env.ARTIFACTS, stageRecord(row).artifact, contract);
  return check.ok ? null : `${check.check}: ${check.detail}`;
}

/** The gate refused: this stage FAILED naming the check, later stages SKIPPED, the job failed. */
export async function refuseStage(env: Env, jobId: string, stage: Stage, message: string): Promise<void> {
  const now = Date.now();
  await runSteps(env.DB, [
    endStage(env.DB, jobId, stage, { status: "FAILED", message }, now),
    stopJob(env.DB, jobId, "failed", now),
    appendLog(env.DB, jobId, { type: "gate_failed", stage, data: { message } }, now),
  ]);
}

export async function beginStage(env: Env, jobId: string, stage: Stage): Promise<number> {
  const now = Date.now();
  await runSteps(env.DB, [
    startStage(env.DB, jobId, stage, now),
    appendLog(env.DB, jobId, { type: "stage_start", stage }, now),
  ]);
  return now;
}
