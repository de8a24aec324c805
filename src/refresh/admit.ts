import type { NewRootTask } from "../db/jobs";
import { runSteps } from "../db/step";
import { markQueued } from "../db/tasks";
import { sendWarmMessages, warmMessageFor, warmQueue } from "../warm/messages";
import { failPoisonTasks } from "../warm/poison";

/**
 * How a refresh job's `pending` tasks reach the queue: the one place to switch to admission windows once
 * they land (then this becomes "leave them pending"). Today it sends them as the sweeper does: what was
 * sent is marked `queued`; what was not stays `pending` and the cron sweep sends it.
 */
export async function admitRefreshTasks(
  env: Env,
  jobId: string,
  tasks: readonly NewRootTask[],
  now: number,
): Promise<{ queued: number; pending: number }> {
  const messages = tasks.map((t) =>
    warmMessageFor({
      job_id: jobId,
      author_key: t.key,
      author_name: t.name,
      depth: 0,
      max_depth: 0,
      generation: 0,
    }),
  );
  try {
    const sent = await sendWarmMessages(warmQueue(env), messages);
    await failPoisonTasks(env.DB, sent.invalid, now);
    if (sent.sent.length > 0) await runSteps(env.DB, [markQueued(env.DB, sent.sent, now)]);
    return { queued: sent.sent.length, pending: tasks.length - sent.sent.length };
  } catch (error) {
    console.error(JSON.stringify({ msg: "refresh tasks left pending", jobId, error: String(error) }));
    return { queued: 0, pending: tasks.length };
  }
}
