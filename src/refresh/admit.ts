import { loadConfig } from "../config";
import type { NewRootTask } from "../db/jobs";
import { admitQuietly } from "../warm/admission";

/**
 * How a refresh job's `pending` tasks reach the queue: through admission (#13 item 1), like any job's, a
 * window at a time and weighted by its `low` priority against the running jobs. This pass admits what fits
 * now; the consumers, the job's warm stage and the cron sweep admit the rest as slots free.
 */
export async function admitRefreshTasks(
  env: Env,
  jobId: string,
  tasks: readonly NewRootTask[],
  now: number,
): Promise<{ queued: number; pending: number }> {
  const admitted = (await admitQuietly(env, loadConfig(env), now)).admitted[jobId] ?? 0;
  return { queued: admitted, pending: tasks.length - admitted };
}
