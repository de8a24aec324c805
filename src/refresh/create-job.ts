import type { ExpiringItem } from "../db/cached-items";
import { createJobStatements, type NewRootTask } from "../db/jobs";
import { markRefreshJobStatement } from "../db/refresh-jobs";
import { artifactKey, putArtifact, sha256Hex } from "../jobs/artifacts";
import { INPUT_NAME } from "../jobs/ingest-stage";
import { lifecycleStatements, startLifecycle } from "../jobs/lifecycle";
import { admitRefreshTasks } from "./admit";
import { newRefreshJobId } from "./ids";

/**
 * A refresh job, written like an upload's: its input (the selected items as JSON, so ingest checks its
 * sha256 and plans from the task rows as for any job) goes to R2, then the job row (kind `refresh`,
 * priority `low`, depth 0: a refresh discovers no co-authors), its tasks (`pending`), its stage rows and
 * first log line in one D1 batch; then its tasks are admitted and its Workflow instance starts.
 */
export async function createRefreshJob(
  env: Env,
  items: readonly ExpiringItem[],
  now: number,
): Promise<{ jobId: string; queued: number; pending: number }> {
  const jobId = newRefreshJobId();
  const bytes = new TextEncoder().encode(
    JSON.stringify({ kind: "refresh", items: items.map((i) => ({ key: i.item_key, name: i.name })) }),
  );
  const sha256 = await sha256Hex(bytes);
  await putArtifact(env.ARTIFACTS, artifactKey(jobId, INPUT_NAME), bytes, "application/json", sha256);
  const tasks: NewRootTask[] = items.map((i) => ({ key: i.item_key, name: i.name, kind: i.kind }));
  const record = refreshJobRecord(jobId, items.length, sha256, now);
  await env.DB.batch([
    ...createJobStatements(env.DB, record, tasks, "pending"),
    markRefreshJobStatement(env.DB, jobId),
    ...lifecycleStatements(env.DB, jobId, sha256, now),
  ]);
  const [admitted] = await Promise.all([
    admitRefreshTasks(env, jobId, tasks, now),
    startLifecycle(env, jobId),
  ]);
  return { jobId, ...admitted };
}

/** A refresh job's row: kind `refresh` is set beside it (markRefreshJobStatement), priority `low`, depth 0. */
export function refreshJobRecord(id: string, items: number, requestHash: string, now: number) {
  return {
    id,
    maxDepth: 0,
    priority: "low",
    format: "refresh",
    filename: null,
    idempotencyKey: null,
    requestHash,
    rowsTotal: items,
    duplicatesSkipped: 0,
    now,
  };
}
