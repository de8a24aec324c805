import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config";
import { createProviderBreakers } from "../../src/sources";
import { handleWarmBatch } from "../../src/warm/consumer";
import { isolateBreakerList, resetAll, waitForTasksWritten } from "../support/db";
import { tasksInFlight, trackingEnv } from "../support/drain";
import { call } from "../support/http";
import { queueMessage, seedJob, warmDeps } from "../support/jobs";
import { assertNoStrayCalls, upstream } from "../support/upstream";

/** The harness's own promises: stray network calls fail the test, and no test leaks into the next. */
describe("test harness", () => {
  beforeEach(resetAll);

  it("a call to any host but the stand-in's is recorded, and the after-test check fails on it", async () => {
    await expect(fetch("http://example.com/books")).rejects.toThrow(/unmocked network call/);
    expect(() => assertNoStrayCalls()).toThrow(/GET http:\/\/example\.com\/books/);
    // The check forgets what it reported: the global afterEach then passes.
    expect(() => assertNoStrayCalls()).not.toThrow();
  });

  it("even a stray call the code absorbs (as a transient network error) is caught", async () => {
    const config = loadConfig({
      ...env,
      OPENLIBRARY_BASE_URL: "https://openlibrary.org",
      GOOGLE_BOOKS_ENABLED: "false",
    });
    const { messages } = await seedJob(["Stray Writer"], 0);
    const batch = createMessageBatch("author-warming-queue", [queueMessage(messages[0])]);
    const ctx = createExecutionContext();
    await handleWarmBatch(
      batch,
      trackingEnv(),
      warmDeps({ config, fetch: (input, init) => fetch(input, init), breakers: createProviderBreakers() }),
    );
    // The consumer turned the refusal into a retry: no assertion on the outcome would notice.
    expect((await getQueueResult(batch, ctx)).retryMessages).toHaveLength(1);
    expect(() => assertNoStrayCalls()).toThrow(/https:\/\/openlibrary\.org\/search\.json/);
  });

  it("resetAll closes the breakers the worker's handlers use", async () => {
    for (const breaker of isolateBreakerList())
      while (breaker.snapshot().state !== "open") breaker.recordFailure();
    const states = async () => {
      const body = (await (await call("/health")).json()) as { breakers: Record<string, { state: string }> };
      return Object.fromEntries(Object.entries(body.breakers).map(([name, b]) => [name, b.state]));
    };
    // The worker sees the same breakers (one module graph per isolate).
    expect(Object.values(await states())).toEqual(["open", "open", "open", "open"]);
    await resetAll();
    expect(await states()).toEqual({
      kv: "closed",
      kvWarmer: "closed",
      openlibrary: "closed",
      googlebooks: "closed",
    });
  });

  it("an upload's tasks count as in flight until the real queue's consumer closes them", async () => {
    // Slow answers keep the task open while the test looks.
    upstream.configure({ latencyMs: 500 });
    const response = await call("/api/jobs?maxDepth=0", {
      method: "POST",
      headers: { Authorization: "Bearer test-token", "Content-Type": "text/csv" },
      body: "Title,Author\nA Book,Drained Writer\n",
    });
    expect(response.status).toBe(202);
    const { jobId } = (await response.json()) as { jobId: string };
    // Tracked by `call`: what the global afterEach waits for (before ingest has written the task, the job
    // stands for it).
    expect((await tasksInFlight()).map((t) => t.job_id)).toEqual([jobId]);
    await waitForTasksWritten(jobId);
    expect((await tasksInFlight()).map((t) => `${t.job_id} ${t.author_key}`)).toEqual([
      `${jobId} drained writer`,
    ]);
  });
});
