import type { Config } from "../config";
import { completeJobsStatement, getJob } from "../db/jobs";
import { appendLog } from "../db/lifecycle/job-log";
import { type JobSnapshot, readJobSnapshot } from "../db/lifecycle/job-snapshot";
import { type StageEnd, touchStage } from "../db/lifecycle/stage-transitions";
import { runSteps } from "../db/step";
import { markQueued } from "../db/tasks";
import { takeStalledTasksOfJob } from "../db/tasks/readmit";
import type { JobRow } from "../db/types";
import { admitQuietly } from "../warm/admission";
import { sendWarmMessages, warmMessageFor, warmQueues } from "../warm/messages";
import { failPoisonTasks } from "../warm/poison";
import { artifactKey, putJsonArtifact } from "./artifacts";
import { ARTIFACT_NAMES, type WarmSummary } from "./stages";

export type WatchResult =
  | { state: "done" | "stalled" | "waiting" }
  | { state: "stopped"; status: string }
  | { state: "missing" };

const STOPPED = new Set(["cancelled", "failed"]);

/**
 * One warm check: watches the job for up to WARM_WATCH_SECONDS (polling D1, and running an admission pass
 * each poll) and says whether every task is terminal (failed and dead do not block), nothing has moved for
 * WARM_STALL_SECONDS with items in flight (messages lost), or it should keep waiting. A paused job is never stalled: it is still. Each poll reads
 * the job row only (its counters move in the same batch as the task rows); the task rows are counted only
 * when the counters say done or the job row has gone quiet, so a busy 60,000-task job costs one row a poll.
 */
export async function watchWarm(env: Env, jobId: string, config: Config): Promise<WatchResult> {
  const until = Date.now() + config.WARM_WATCH_SECONDS * 1000;
  const stallMs = config.WARM_STALL_SECONDS * 1000;
  await runSteps(env.DB, [touchStage(env.DB, jobId, "warm", Date.now())]);
  for (;;) {
    const job = await getJob(env.DB, jobId);
    if (!job) return { state: "missing" };
    if (STOPPED.has(job.status)) return { state: "stopped", status: job.status };
    // The admission pump: free slots (this job's and others') are filled every poll, so a job whose
    // consumers went quiet, or a new job waiting for its first window, is never left behind.
    if (job.status === "queued" || job.status === "running") await admitQuietly(env, config, Date.now());
    const quiet = Date.now() - job.updated_at >= stallMs;
    if ((openByCounters(job) === 0 || quiet) && job.status !== "paused") {
      const result = await judgeSnapshot(env, jobId, stallMs);
      if (result) return result;
    }
    if (Date.now() >= until) return { state: "waiting" };
    await new Promise((resolve) => setTimeout(resolve, config.WARM_POLL_MS));
  }
}

/** Tasks not yet terminal, by the job row's counters. */
function openByCounters(job: JobRow): number {
  const closed = job.done_count + job.skipped_count + job.failed_count + job.dead_count + job.cancelled_count;
  return job.total_tasks - closed;
}

/** The task rows decide (the truth the counters must agree with); null: keep waiting. */
async function judgeSnapshot(env: Env, jobId: string, stallMs: number): Promise<WatchResult | null> {
  const snapshot = await readJobSnapshot(env.DB, jobId);
  if (!snapshot) return { state: "missing" };
  if (STOPPED.has(snapshot.job.status)) return { state: "stopped", status: snapshot.job.status };
  // A paused job waits for its resume even when nothing is open: the operator holds it.
  if (snapshot.job.status === "paused") return null;
  if (snapshot.open === 0) return { state: "done" };
  // Only admitted tasks can be lost; pending ones wait for a free slot (the polls above admit them).
  const inFlight = (snapshot.byStatus.queued ?? 0) + (snapshot.byStatus.running ?? 0);
  if (inFlight > 0 && Date.now() - snapshot.lastMovedAt >= stallMs) return { state: "stalled" };
  return null;
}

/** Lost messages of admitted tasks: the sweeper's re-send (same statements, same poison handling) for this job only. */
export async function readmitStalled(env: Env, jobId: string, config: Config): Promise<number> {
  const now = Date.now();
  const stalled = await takeStalledTasksOfJob(env.DB, jobId, now, config.WARM_STALL_SECONDS, 1000);
  if (stalled.length === 0) return 0;
  const result = await sendWarmMessages(warmQueues(env), stalled.map(warmMessageFor));
  await failPoisonTasks(env.DB, result.invalid, now);
  await runSteps(env.DB, [
    ...(result.sent.length > 0 ? [markQueued(env.DB, result.sent, now)] : []),
    appendLog(
      env.DB,
      jobId,
      { type: "readmitted", stage: "warm", data: { stalled: stalled.length, sent: result.sent.length } },
      now,
    ),
  ]);
  return result.sent.length;
}

/** Every task is terminal: complete the job (as the consumer would have) and write warm.json. */
export async function finishWarm(env: Env, jobId: string, readmitted: number): Promise<StageEnd | null> {
  await env.DB.batch([completeJobsStatement(env.DB, [jobId], Date.now())]);
  const snapshot = await readJobSnapshot(env.DB, jobId);
  if (!snapshot) return null;
  const summary: WarmSummary = { kind: "warm", jobId, counts: countsOf(snapshot), readmitted };
  if (summary.counts.open > 0)
    return { status: "FAILED", message: `warm_terminal: ${summary.counts.open} tasks still open` };
  const artifact = await putJsonArtifact(env.ARTIFACTS, artifactKey(jobId, ARTIFACT_NAMES.warm), summary);
  return { status: "SUCCESS", counts: { ...summary.counts, readmitted }, artifact };
}

function countsOf(s: JobSnapshot): WarmSummary["counts"] {
  const n = (status: string) => s.byStatus[status] ?? 0;
  return {
    total: s.total,
    done: n("done"),
    skipped: n("skipped"),
    failed: n("failed"),
    dead: n("dead"),
    cancelled: n("cancelled"),
    open: s.open,
  };
}
