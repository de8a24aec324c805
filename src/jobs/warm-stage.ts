import type { Config } from "../config";
import { completeJobsStatement } from "../db/jobs";
import { appendLog } from "../db/lifecycle/job-log";
import { type JobSnapshot, readJobSnapshot } from "../db/lifecycle/job-snapshot";
import { type StageEnd, touchStage } from "../db/lifecycle/stage-transitions";
import { runSteps } from "../db/step";
import { markQueued } from "../db/tasks";
import { takeStalledTasksOfJob } from "../db/tasks/readmit";
import { sendWarmMessages, warmMessageFor, warmQueue } from "../warm/messages";
import { failPoisonTasks } from "../warm/poison";
import { artifactKey, putJsonArtifact } from "./artifacts";
import { ARTIFACT_NAMES, type WarmSummary } from "./stages";

export type WatchResult =
  | { state: "done" | "stalled" | "waiting" }
  | { state: "stopped"; status: string }
  | { state: "missing" };

const STOPPED = new Set(["cancelled", "failed"]);

/**
 * One warm check: watches the job's task rows for up to WARM_WATCH_SECONDS (polling D1) and says whether
 * every task is terminal (failed and dead do not block), nothing has moved for WARM_STALL_SECONDS with
 * items open (messages lost), or it should keep waiting. A paused job is never stalled: it is still.
 */
export async function watchWarm(env: Env, jobId: string, config: Config): Promise<WatchResult> {
  const until = Date.now() + config.WARM_WATCH_SECONDS * 1000;
  await runSteps(env.DB, [touchStage(env.DB, jobId, "warm", Date.now())]);
  for (;;) {
    const snapshot = await readJobSnapshot(env.DB, jobId);
    if (!snapshot) return { state: "missing" };
    if (STOPPED.has(snapshot.job.status)) return { state: "stopped", status: snapshot.job.status };
    // A paused job waits for its resume even when nothing is open: the operator holds it.
    if (snapshot.open === 0 && snapshot.job.status !== "paused") return { state: "done" };
    const still = Date.now() - snapshot.lastMovedAt >= config.WARM_STALL_SECONDS * 1000;
    if (still && snapshot.job.status !== "paused") return { state: "stalled" };
    if (Date.now() >= until) return { state: "waiting" };
    await new Promise((resolve) => setTimeout(resolve, config.WARM_POLL_MS));
  }
}

/** Lost messages: the sweeper's re-send (same statements, same poison handling) for this job only. */
export async function readmitStalled(env: Env, jobId: string, config: Config): Promise<number> {
  const now = Date.now();
  const stalled = await takeStalledTasksOfJob(env.DB, jobId, now, config.WARM_STALL_SECONDS, 1000);
  if (stalled.length === 0) return 0;
  const result = await sendWarmMessages(warmQueue(env), stalled.map(warmMessageFor));
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
