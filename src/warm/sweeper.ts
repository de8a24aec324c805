import type { Config } from "../config";
import { completeJobsStatement, listUnfinishedJobIds } from "../db/jobs";
import {
  finishTasksStatements,
  listExhaustedTasks,
  listStalePendingTasks,
  markQueuedStatements,
  takeStalledTasks,
} from "../db/tasks";
import { sendWarmMessages, type WarmMessage } from "./messages";

export interface SweepReport {
  resent: number;
  markedDead: number;
  jobsChecked: number;
}

const SWEEP_LIMIT = 1000;

/**
 * The cron sweep, so nothing is lost between the platform's pieces:
 * - tasks still pending (their message never reached the queue) are sent again;
 * - open tasks of a job where nothing has moved for STALL_SECONDS (messages lost) are sent again;
 * - tasks that used up every delivery but were never marked dead (dead-letter consumer lost) become dead;
 * - jobs with no open task left are completed.
 */
export async function sweep(env: Env, deps: { config: Config; now: () => number }): Promise<SweepReport> {
  const now = deps.now();
  const { config } = deps;
  // First settle what can never be delivered again, so the re-sends below do not revive it.
  const exhausted = await listExhaustedTasks(
    env.DB,
    config.MAX_DELIVERIES,
    config.MAX_TOTAL_ATTEMPTS,
    now - config.EXHAUSTED_GRACE_SECONDS * 1000,
    SWEEP_LIMIT,
  );
  if (exhausted.length > 0) {
    await env.DB.batch(
      finishTasksStatements(
        env.DB,
        exhausted.map((t) => ({
          ...t,
          status: "dead" as const,
          error: null,
        })),
        now,
      ),
    );
  }
  const stale = [
    ...(await listStalePendingTasks(env.DB, now, config.STALE_PENDING_SECONDS, SWEEP_LIMIT)),
    ...(await takeStalledTasks(env.DB, now, config.STALL_SECONDS, SWEEP_LIMIT)),
  ];
  let resent = 0;
  if (stale.length > 0) {
    const messages: WarmMessage[] = stale.map((t) => ({
      v: 1,
      jobId: t.job_id,
      authorKey: t.author_key,
      authorName: t.author_name,
      depth: t.depth,
      maxDepth: t.max_depth,
      gen: Number(t.generation),
    }));
    const result = await sendWarmMessages(env.WARM_QUEUE as Queue<WarmMessage>, messages);
    if (result.sent.length > 0) await env.DB.batch(markQueuedStatements(env.DB, result.sent, now));
    resent = result.sent.length;
  }
  const jobIds = await listUnfinishedJobIds(env.DB, SWEEP_LIMIT);
  await env.DB.batch([completeJobsStatement(env.DB, jobIds, now)]);
  const report = { resent, markedDead: exhausted.length, jobsChecked: jobIds.length };
  console.log(JSON.stringify({ msg: "sweep", ...report }));
  return report;
}
