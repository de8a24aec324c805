import { applyD1Migrations, reset } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { isolateKvBreaker, isolateReaderKvBreaker } from "../../src/cache/kv";
import { loadConfig } from "../../src/config";
import { isolateBreakers } from "../../src/sources";
import { upstream } from "./upstream";

/** The breakers the worker's handlers keep per isolate: provider breakers and both KV breakers. */
export function isolateBreakerList() {
  return [...Object.values(isolateBreakers(loadConfig(env))), isolateKvBreaker, isolateReaderKvBreaker];
}

/**
 * Empties D1, KV and the queues' state, re-applies migrations, resets the stand-in and closes the
 * isolate's breakers (an earlier test's outage must not hold this one's requests back).
 */
export async function resetAll(): Promise<void> {
  await reset();
  await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
  upstream.reset();
  for (const breaker of isolateBreakerList()) breaker.reset();
}

export async function taskCounts(jobId: string): Promise<Record<string, number>> {
  const { results } = await env.DB.prepare(
    "SELECT status, COUNT(*) AS n FROM tasks WHERE job_id = ?1 GROUP BY status",
  )
    .bind(jobId)
    .all<{ status: string; n: number }>();
  return Object.fromEntries(results.map((r) => [r.status, r.n]));
}

export async function jobRow(jobId: string) {
  return env.DB.prepare("SELECT * FROM jobs WHERE id = ?1")
    .bind(jobId)
    .first<import("../../src/db/types").JobRow>();
}

/**
 * Waits until the job's ingest stage has written its depth-0 tasks (an upload's 202 comes before them): its
 * total has reached the items its upload planned.
 */
export async function waitForTasksWritten(jobId: string, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const job = await jobRow(jobId);
    if (job?.roots_written === 1) return;
    if (Date.now() > until) throw new Error(`job ${jobId}: tasks not written: ${JSON.stringify(job)}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
