import { applyD1Migrations, reset } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { upstream } from "./upstream";

/** Empties D1, KV and the queues' state, re-applies migrations and resets the stand-in. */
export async function resetAll(): Promise<void> {
  await reset();
  await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
  upstream.reset();
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
