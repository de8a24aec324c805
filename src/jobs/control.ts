import { loadConfig } from "../config";
import { getJob } from "../db/jobs";
import { appendLog } from "../db/lifecycle/job-log";
import { pauseJob } from "../db/lifecycle/pause-job";
import { reopenFailedJob } from "../db/lifecycle/reopen-job";
import { resumeJob } from "../db/lifecycle/resume-job";
import { resetStagesFrom } from "../db/lifecycle/stage-transitions";
import { listStages } from "../db/lifecycle/stages";
import { stopJob } from "../db/lifecycle/stop-job";
import { runSteps } from "../db/step";
import { markPending } from "../db/tasks";
import { bumpOpenTasksOfJob } from "../db/tasks/readmit";
import type { JobRow } from "../db/types";
import { AppError, notFound } from "../errors";
import { admitQuietly } from "../warm/admission";
import { sendWarmMessages, warmMessageFor, warmQueues } from "../warm/messages";
import { failPoisonTasks } from "../warm/poison";
import { artifactKey, putJsonArtifact } from "./artifacts";
import { artifactValid } from "./gate";
import { buildManifest } from "./manifest";
import { ARTIFACT_NAMES, type RerunFrom, stagesBefore, stagesFrom } from "./stages";

const FINISHED = new Set(["completed", "completed_with_errors", "failed"]);

function finished(job: JobRow, action: string): AppError {
  return new AppError({
    code: "job_finished",
    message: `job ${job.id} is ${job.status}: nothing to ${action}`,
    httpStatus: 409,
    kind: "permanent",
    details: { status: job.status },
  });
}

async function existing(env: Env, jobId: string): Promise<JobRow> {
  const job = await getJob(env.DB, jobId);
  if (!job) throw notFound("Job", jobId);
  return job;
}

/** The platform refuses to terminate an instance that already ended (or never existed): that is fine here. */
async function terminateInstance(env: Env, jobId: string): Promise<void> {
  try {
    await (await env.JOB_WORKFLOW.get(jobId)).terminate();
  } catch (error) {
    console.log(JSON.stringify({ msg: "job workflow not terminated", jobId, error: String(error) }));
  }
}

/**
 * Cancel: open tasks end `cancelled` (counted), the job `cancelled`, the running stage CANCELLED, the
 * instance terminated, and a manifest written that says so. From this write on the consumer's job-state
 * check drops the job's messages, so no new upstream request starts. Repeating it is harmless.
 */
export async function cancelJob(env: Env, jobId: string): Promise<void> {
  const job = await existing(env, jobId);
  if (FINISHED.has(job.status)) throw finished(job, "cancel");
  const now = Date.now();
  const [stopped] = await runSteps(env.DB, [
    stopJob(env.DB, jobId, "cancelled", now),
    appendLog(env.DB, jobId, { type: "operator", data: { action: "cancel", from: job.status } }, now),
  ]);
  await terminateInstance(env, jobId);
  try {
    const manifest = await buildManifest(env, await existing(env, jobId), null, Date.now());
    await putJsonArtifact(env.ARTIFACTS, artifactKey(jobId, ARTIFACT_NAMES.publish), manifest);
  } catch (error) {
    // The cancel itself is recorded; only its manifest is missing (GET /manifest answers 404).
    console.error(JSON.stringify({ msg: "cancel manifest not written", jobId, error: String(error) }));
  }
  console.log(JSON.stringify({ msg: "job cancelled", jobId, closed: stopped?.closed ?? 0 }));
}

/** Pause: the job admits nothing and its messages are parked by the consumer. Repeating it is harmless. */
export async function pauseJobById(env: Env, jobId: string): Promise<void> {
  const job = await existing(env, jobId);
  if (job.status === "paused") return;
  if (job.status !== "queued" && job.status !== "running") throw finished(job, "pause");
  const now = Date.now();
  await runSteps(env.DB, [
    pauseJob(env.DB, jobId, now),
    appendLog(env.DB, jobId, { type: "operator", data: { action: "pause", from: job.status } }, now),
  ]);
}

/**
 * Resume: the job runs again; the tasks it had admitted (at most a window: their messages were parked) get
 * a fresh message one generation on (parked copies are obsolete, so nothing is warmed twice; done tasks are
 * not sent, so nothing is repeated), and its pending tasks are admitted as slots free, like any job's.
 */
export async function resumeJobById(env: Env, jobId: string): Promise<{ readmitted: number }> {
  const job = await existing(env, jobId);
  if (job.status === "queued" || job.status === "running") return { readmitted: 0 };
  if (job.status !== "paused") throw finished(job, "resume");
  const now = Date.now();
  const [resumed] = await runSteps(env.DB, [resumeJob(env.DB, jobId, now)]);
  if (!resumed) return { readmitted: 0 };
  const open = await bumpOpenTasksOfJob(env.DB, jobId, now);
  const sent = await sendWarmMessages(warmQueues(env), open.map(warmMessageFor));
  await failPoisonTasks(env.DB, sent.invalid, now);
  // Sent copies stay `queued`; what could not be sent goes back to pending, for admission.
  const unsent = sent.unsent.length > 0 ? [markPending(env.DB, sent.unsent, now)] : [];
  await runSteps(env.DB, [
    ...unsent,
    appendLog(
      env.DB,
      jobId,
      { type: "operator", data: { action: "resume", readmitted: sent.sent.length } },
      now,
    ),
  ]);
  const admitted = await admitQuietly(env, loadConfig(env), Date.now());
  return { readmitted: sent.sent.length + (admitted.admitted[jobId] ?? 0) };
}

/**
 * Rerun from a stage (seed 003's resume-from): every earlier stage must be SUCCESS with a valid artifact,
 * else 409 naming the blocking stage. The chosen stage and later ones go back to PENDING and the instance
 * restarts; its gates skip the stages that still hold.
 */
export async function rerunJob(env: Env, jobId: string, from: RerunFrom): Promise<void> {
  const job = await existing(env, jobId);
  if (job.status === "cancelled") throw finished(job, "rerun");
  const [rows] = await runSteps(env.DB, [listStages(env.DB, jobId)]);
  for (const stage of stagesBefore(from)) {
    const row = rows.find((r) => r.stage === stage);
    const problem = !row
      ? "has no stage row"
      : row.status !== "SUCCESS"
        ? `is ${row.status}`
        : await artifactValid(env, row);
    if (problem) {
      throw new AppError({
        code: "stage_blocked",
        message: `cannot rerun from ${from}: stage ${stage} ${problem}`,
        httpStatus: 409,
        kind: "permanent",
        details: { blockingStage: stage },
      });
    }
  }
  const now = Date.now();
  await runSteps(env.DB, [
    reopenFailedJob(env.DB, jobId, now),
    resetStagesFrom(env.DB, jobId, stagesFrom(from)),
    appendLog(env.DB, jobId, { type: "operator", data: { action: "rerun", from } }, now),
  ]);
  await restartInstance(env, jobId);
}

async function restartInstance(env: Env, jobId: string): Promise<void> {
  try {
    await (await env.JOB_WORKFLOW.get(jobId)).restart();
  } catch {
    // No instance (a job from before Workflows, or one whose instance was removed): start one.
    await env.JOB_WORKFLOW.create({ id: jobId, params: { jobId } });
  }
}

/**
 * After a redrive (POST /retry) the job warms again: its warm, verify and publish stages went back to PENDING
 * with the tasks (redriveTasks), and the instance restarts (a job without stage rows, from before #12, is
 * left alone).
 */
export async function rerunAfterRedrive(env: Env, jobId: string): Promise<void> {
  const [rows] = await runSteps(env.DB, [listStages(env.DB, jobId)]);
  if (rows.find((r) => r.stage === "ingest")?.status !== "SUCCESS") return;
  await runSteps(env.DB, [
    appendLog(env.DB, jobId, { type: "operator", data: { action: "retry" } }, Date.now()),
  ]);
  await restartInstance(env, jobId);
}
