import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { jobRow, resetAll, taskCounts } from "../support/db";
import { call, TOKEN, uploadCsv, waitForJob } from "../support/http";
import { upstream } from "../support/upstream";

describe("retries, dead letters and redrive, through the real local queues", () => {
  beforeEach(resetAll);

  it("an always-failing author ends dead after every retry; redrive brings it home once upstream recovers", async () => {
    upstream.configure({ failingAuthors: ["Broken Writer"] });
    const csv = "Title,Author\nA,Healthy Writer\nB,Broken Writer\n";
    const { jobId } = (await (await uploadCsv(csv, "?maxDepth=0")).json()) as { jobId: string };
    const progress = (await waitForJob(jobId, 30_000)) as {
      status: string;
      counts: Record<string, number>;
      deadLetters: number;
    };
    expect(progress.status).toBe("completed_with_errors");
    expect(progress.counts).toMatchObject({ total: 2, done: 1, dead: 1 });
    expect(progress.deadLetters).toBe(1);
    const dead = await env.DB.prepare(
      "SELECT attempts, error FROM tasks WHERE job_id = ?1 AND status = 'dead'",
    )
      .bind(jobId)
      .first<{ attempts: number; error: string }>();
    // One try and three retries failed on the author's own account (deliveries held back by the open
    // breaker do not count against it, so attempts may be higher).
    expect(dead?.attempts).toBeGreaterThanOrEqual(4);
    expect(dead?.error).toMatch(/retries exhausted after \d+ attempts; last error: .*500/);
    const own = await env.DB.prepare("SELECT failures FROM tasks WHERE job_id = ?1 AND status = 'dead'")
      .bind(jobId)
      .first();
    expect(own).toEqual({ failures: 3 });
    const health = (await (await call("/health")).json()) as { deadLetters: { count: number } };
    expect(health.deadLetters.count).toBe(1);

    upstream.configure({ failingAuthors: [] });
    const redrive = await call(`/api/jobs/${jobId}/retry`, {
      method: "POST",
      headers: { Authorization: `Bearer ${TOKEN}` },
    });
    expect(redrive.status).toBe(202);
    expect(await redrive.json()).toMatchObject({ jobId, requeued: 1 });
    const after = (await waitForJob(jobId, 30_000)) as { status: string; counts: Record<string, number> };
    expect(after.status).toBe("completed");
    expect(after.counts).toMatchObject({ total: 2, done: 2, dead: 0, failed: 0 });
    expect(await jobRow(jobId)).toMatchObject({ done_count: 2, dead_count: 0, failed_count: 0 });
    const task = await env.DB.prepare(
      "SELECT history FROM tasks WHERE job_id = ?1 AND author_key = 'broken writer'",
    )
      .bind(jobId)
      .first<{ history: string }>();
    const history = JSON.parse(task?.history ?? "[]") as { status: string; attempts: number }[];
    expect(history).toEqual([expect.objectContaining({ status: "dead", failures: 3 })]);

    const nothing = await call(`/api/jobs/${jobId}/retry`, {
      method: "POST",
      headers: { Authorization: `Bearer ${TOKEN}` },
    });
    expect(nothing.status).toBe(409);
    expect(await taskCounts(jobId)).toEqual({ done: 2 });
  });

  it("redrive needs the bearer token and a known job", async () => {
    expect((await call(`/api/jobs/${crypto.randomUUID()}/retry`, { method: "POST" })).status).toBe(401);
    const missing = await call(`/api/jobs/${crypto.randomUUID()}/retry`, {
      method: "POST",
      headers: { Authorization: `Bearer ${TOKEN}` },
    });
    expect(missing.status).toBe(404);
  });
});
