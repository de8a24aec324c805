import { loadConfig } from "../config";
import { getJob } from "../db/jobs";
import { runSteps } from "../db/step";
import { redriveTasks } from "../db/tasks";
import { AppError, notFound } from "../errors";
import { admitQuietly } from "./admission";

export interface RedriveResult {
  jobId: string;
  requeued: number;
  pending: number;
  status: string;
}

/**
 * Sends a job's failed and dead tasks round again. Tasks are re-opened as pending in one D1 batch
 * (so counters never disagree with rows), then admitted like any pending task: a window at a time.
 */
export async function redriveJob(env: Env, jobId: string, now: number): Promise<RedriveResult> {
  const job = await getJob(env.DB, jobId);
  if (!job) throw notFound("Job", jobId);
  const [reopened] = await runSteps(env.DB, [redriveTasks(env.DB, jobId, now)]);
  if (reopened.length === 0) {
    throw new AppError({
      code: "nothing_to_retry",
      message: `job ${jobId} has no failed or dead tasks`,
      httpStatus: 409,
      kind: "permanent",
      details: { status: job.status },
    });
  }
  const admitted = (await admitQuietly(env, loadConfig(env), now)).admitted[jobId] ?? 0;
  console.log(JSON.stringify({ msg: "job redriven", jobId, reopened: reopened.length, admitted }));
  return { jobId, requeued: admitted, pending: reopened.length - admitted, status: "running" };
}
