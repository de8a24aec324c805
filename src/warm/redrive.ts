import { getJob } from "../db/jobs";
import { runSteps } from "../db/step";
import { markQueued, redriveTasks } from "../db/tasks";
import { AppError, notFound } from "../errors";
import { sendWarmMessages, warmMessageFor, warmQueue } from "./messages";
import { failPoisonTasks } from "./poison";

export interface RedriveResult {
  jobId: string;
  requeued: number;
  pending: number;
  status: string;
}

/**
 * Sends a job's failed and dead tasks round again. Tasks are re-opened as pending in one D1 batch
 * (so counters never disagree with rows), then sent; any send that fails is picked up by the sweeper.
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
  const messages = reopened.map((t) => warmMessageFor({ ...t, job_id: jobId, max_depth: job.max_depth }));
  const sent = await sendWarmMessages(warmQueue(env), messages);
  await failPoisonTasks(env.DB, sent.invalid, now);
  if (sent.sent.length > 0) await runSteps(env.DB, [markQueued(env.DB, sent.sent, now)]);
  console.log(
    JSON.stringify({ msg: "job redriven", jobId, requeued: sent.sent.length, unsent: sent.unsent.length }),
  );
  return { jobId, requeued: sent.sent.length, pending: sent.unsent.length, status: "running" };
}
