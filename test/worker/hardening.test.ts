import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { createApp } from "../../src/api/app";
import { cacheKeys } from "../../src/cache/keys";
import { createCache, createKvBreaker, isolateKvBreaker } from "../../src/cache/kv";
import { loadConfig } from "../../src/config";
import { createProviderBreakers } from "../../src/sources";
import { handleWarmBatch } from "../../src/warm/consumer";
import { sweep } from "../../src/warm/sweeper";
import { jobRow, resetAll, taskCounts, waitForTasksWritten } from "../support/db";
import { uploadCsv } from "../support/http";
import { queueMessage, seedJob, warmDeps } from "../support/jobs";
import { upstream } from "../support/upstream";
import { worksForAuthor } from "../support/upstream/catalogue.ts";

/** The 202's body of an upload that must be accepted. */
async function accepted<T>(pending: Promise<Response>): Promise<T> {
  const response = await pending;
  expect(response.status, await response.clone().text()).toBe(202);
  return (await response.json()) as T;
}

const jobCount = async () =>
  Number((await env.DB.prepare("SELECT COUNT(*) AS n FROM jobs").first<{ n: number }>())?.n ?? 0);

describe("bad input never wedges a job", () => {
  beforeEach(resetAll);

  it("refuses an export whose only author name is too long: 400, no job row, the Idempotency-Key stays free", async () => {
    const response = await uploadCsv(`Title,Author\nBook,${"Q".repeat(1100)}\n`, "", {
      "Idempotency-Key": "k1",
    });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { error: { code: string; details: { rowsRejected: number } } };
    expect(body.error.code).toBe("no_authors");
    expect(body.error.details.rowsRejected).toBe(1);
    expect(await jobCount()).toBe(0);
    // The key was not recorded with a job that never started: the corrected upload gets a real job.
    const retry = await uploadCsv("Title,Author\nBook,Ursula K. Le Guin\n", "?maxDepth=0", {
      "Idempotency-Key": "k1",
    });
    expect(retry.status).toBe(202);
    expect(retry.headers.get("Idempotent-Replayed")).toBeNull();
    expect(await jobCount()).toBe(1);
  });

  it("warms the good rows of an export and reports the refused row and why", async () => {
    const csv = `Title,Author\nA,Ursula K. Le Guin\nB,${"Я".repeat(301)}\nC,Octavia E. Butler\n`;
    const body = await accepted<{
      jobId: string;
      authorsQueued: number;
      rowsRejected: number;
      rejections: { row: number; reason: string }[];
    }>(uploadCsv(csv, "?maxDepth=0"));
    expect(body.authorsQueued).toBe(2);
    expect(body.rowsRejected).toBe(1);
    expect(body.rejections[0]?.row).toBe(3);
    expect(body.rejections[0]?.reason).toMatch(/301 characters.*limit is 300/);
    expect((await jobRow(body.jobId))?.root_tasks).toBe(2);
    await waitForTasksWritten(body.jobId);
    expect((await jobRow(body.jobId))?.total_tasks).toBe(2);
  });

  it("answers a 10 MB author name with a small 400, not a 500", async () => {
    const response = await uploadCsv(`Title,Author\nBook,${"Q".repeat(10 * 1024 * 1024)}\n`);
    expect(response.status).toBe(400);
    expect((await response.text()).length).toBeLessThan(2_000);
    expect(await jobCount()).toBe(0);
  });

  it("caps the header cells echoed by no_author_column", async () => {
    const response = await uploadCsv(`Title,${"H".repeat(200_000)}\nx,y\n`);
    expect(response.status).toBe(400);
    const text = await response.text();
    expect(JSON.parse(text).error.code).toBe("no_author_column");
    expect(text.length).toBeLessThan(2_000);
  });

  it("a task that cannot become a message fails on its own; the sweep still admits every other job's tasks", async () => {
    const poisoned = await seedJob(["Ada Writer"], 0);
    const healthy = await seedJob(["Bea Writer", "Cy Writer"], 0);
    // A row written before the limits existed (or corrupted): its name can never be a valid message.
    await env.DB.prepare(
      `INSERT INTO tasks (job_id, author_key, author_name, depth, status, created_at, updated_at)
       VALUES (?1, ?2, ?3, 0, 'pending', 0, 0)`,
    )
      .bind(poisoned.jobId, "q".repeat(1100), "Q".repeat(1100))
      .run();
    await env.DB.prepare(
      "UPDATE jobs SET total_tasks = total_tasks + 1, root_tasks = root_tasks + 1 WHERE id = ?1",
    )
      .bind(poisoned.jobId)
      .run();
    await env.DB.prepare("UPDATE tasks SET status = 'pending', updated_at = 0 WHERE job_id = ?1")
      .bind(healthy.jobId)
      .run();
    const report = await sweep(env, { config: loadConfig(env), now: () => Date.now() + 120_000 });
    expect(report.errors).toEqual([]);
    expect(report.poisoned).toBe(1);
    // Pending tasks go through admission (the sweep is its safety net), not a blind re-send.
    expect(report).toMatchObject({ resent: 0, admitted: 2 });
    const bad = await env.DB.prepare("SELECT status, error FROM tasks WHERE job_id = ?1 AND author_key = ?2")
      .bind(poisoned.jobId, "q".repeat(1100))
      .first<{ status: string; error: string }>();
    expect(bad?.status).toBe("failed");
    expect(bad?.error).toMatch(/^invalid_task: author(Key|Name) /);
    expect((await jobRow(poisoned.jobId))?.failed_count).toBe(1);
    // A second sweep finds nothing left to choke on.
    expect((await sweep(env, { config: loadConfig(env), now: () => Date.now() + 240_000 })).errors).toEqual(
      [],
    );
  });
});

describe("readers cannot switch off the warmer's cache writes", () => {
  beforeEach(resetAll);

  it("bounds every KV key, list prefixes included, whatever the title or name", () => {
    const bytes = (s: string) => new TextEncoder().encode(s).byteLength;
    for (const text of ["Я".repeat(300), "🙂".repeat(5000), "a".repeat(600), "é".repeat(257)]) {
      expect(bytes(cacheKeys.bookByTitlePrefix(text))).toBeLessThanOrEqual(512);
      expect(bytes(cacheKeys.bookByTitle(text, text))).toBeLessThanOrEqual(512);
      expect(cacheKeys.bookByTitle(text, "x").startsWith(cacheKeys.bookByTitlePrefix(text))).toBe(true);
      expect(bytes(cacheKeys.authorWorks(text))).toBeLessThanOrEqual(512);
      expect(bytes(cacheKeys.processedMarker(text))).toBeLessThanOrEqual(512);
    }
  });

  it("three long-title searches leave both KV breakers closed and the search answers", async () => {
    const readerBreaker = createKvBreaker();
    const app = createApp({
      kvBreaker: readerBreaker,
      providerBreakers: createProviderBreakers(),
      fetch: upstream.fetch,
    });
    for (let i = 0; i < 3; i++) {
      const response = await app.fetch(
        new Request(`http://kindling.test/api/books/search?title=${encodeURIComponent("Я".repeat(300))}`),
        env,
        createExecutionContext(),
      );
      expect(response.status).toBe(200);
    }
    expect(readerBreaker.snapshot().state).toBe("closed");
    expect(isolateKvBreaker.snapshot().state).toBe("closed");
  });

  it("a KV refusal caused by the request's input does not count towards the breaker", async () => {
    const breaker = createKvBreaker();
    const refusing = {
      get: async () => {
        throw new Error("KV GET failed: 414 UTF-8 encoded length of 600 exceeds key length limit of 512.");
      },
    } as unknown as KVNamespace;
    const cache = createCache(refusing, { breaker });
    for (let i = 0; i < 5; i++) expect(await cache.get("some-key")).toBeNull();
    expect(breaker.snapshot().state).toBe("closed");
    const down = createCache(
      {
        get: async () => {
          throw new Error("KV GET failed: 503 service unavailable");
        },
      } as unknown as KVNamespace,
      { breaker },
    );
    for (let i = 0; i < 3; i++) await down.get("some-key");
    expect(breaker.snapshot().state).toBe("open");
  });

  it("an author whose cache writes failed is not done, gets no marker and adds no cached works", async () => {
    const author = "Solo Writer 1";
    expect(worksForAuthor(author).length).toBeGreaterThan(0);
    const { jobId, messages } = await seedJob([author], 0);
    const failingPuts = {
      get: env.CACHE.get.bind(env.CACHE),
      list: env.CACHE.list.bind(env.CACHE),
      delete: env.CACHE.delete.bind(env.CACHE),
      put: async () => {
        throw new Error("KV PUT failed: 500 internal error");
      },
    } as unknown as KVNamespace;
    const batch = createMessageBatch(
      "author-warming-queue",
      messages.map((m) => queueMessage(m)),
    );
    // Its own breaker: the isolate's warmer breaker must not stay open for the tests that follow.
    const cache = createCache(failingPuts, { breaker: createKvBreaker() });
    await handleWarmBatch(batch, env, warmDeps({ cache }));
    const result = await getQueueResult(batch, createExecutionContext());
    // Retried (KV refused) or re-sent (KV breaker open): either way not done and not counted.
    expect(result.explicitAcks.length + result.retryMessages.length).toBe(1);
    expect(await taskCounts(jobId)).not.toHaveProperty("done");
    expect((await jobRow(jobId))?.works_cached).toBe(0);
    expect(await env.CACHE.get(cacheKeys.processedMarker(author))).toBeNull();
    const task = await env.DB.prepare("SELECT error FROM tasks WHERE job_id = ?1")
      .bind(jobId)
      .first<{ error: string }>();
    expect(task?.error).toMatch(/KV/);
  });
});

describe("what a job reports", () => {
  beforeEach(resetAll);

  it("worksCached counts only works warmed by this job, not a skipped author's earlier count", async () => {
    const author = "Solo Writer 1";
    const marker = { worksCount: 7, lastWarmed: new Date().toISOString(), depthExplored: 3, jobId: "old" };
    await env.CACHE.put(cacheKeys.processedMarker(author), JSON.stringify(marker));
    const { jobId, messages } = await seedJob([author], 0);
    const batch = createMessageBatch(
      "author-warming-queue",
      messages.map((m) => queueMessage(m)),
    );
    await handleWarmBatch(batch, env, warmDeps());
    expect(await taskCounts(jobId)).toEqual({ skipped: 1 });
    expect((await jobRow(jobId))?.works_cached).toBe(0);
  });
});

describe("the public read allowance", () => {
  beforeEach(resetAll);

  it("answers misses past a client's allowance with 429 and Retry-After; hits and other clients still answer", async () => {
    // Only this app's own upstream calls are counted (other tests' jobs may still be warming meanwhile).
    const asked: string[] = [];
    const app = createApp({
      providerBreakers: createProviderBreakers(),
      fetch: (input, init) => {
        const request = new Request(input, init);
        asked.push(decodeURIComponent(request.url).replace(/\+/g, " "));
        return upstream.fetch(request);
      },
    });
    const small = {
      ...env,
      PUBLIC_READ_MISSES_PER_MINUTE: "3",
      PUBLIC_READ_MISSES_GLOBAL_PER_MINUTE: "100",
    } as Env;
    const client = `203.0.113.${Math.floor(Math.random() * 250)}`;
    const read = (name: string, ip = client) =>
      app.fetch(
        new Request(`http://kindling.test/api/authors/${encodeURIComponent(name)}/works`, {
          headers: { "CF-Connecting-IP": ip },
        }),
        small,
        createExecutionContext(),
      );
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await read(`Made Up Name ${i}`)).status);
    expect(statuses.every((s) => s !== 429)).toBe(true);
    const allowed = asked.length;
    expect(allowed).toBeGreaterThan(0);
    for (let i = 3; i < 6; i++) statuses.push((await read(`Made Up Name ${i}`)).status);
    expect(statuses.slice(3)).toEqual([429, 429, 429]);
    const refused = await read("Made Up Name 9");
    expect(Number(refused.headers.get("Retry-After"))).toBeGreaterThan(0);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe(
      "read_allowance_exceeded",
    );
    // The refused misses cost the sources nothing.
    expect(asked.length).toBe(allowed);
    expect(asked.some((url) => /Made Up Name [3-9]/.test(url))).toBe(false);
    // Another client has its own allowance.
    expect((await read("Made Up Name 0", "198.51.100.7")).status).not.toBe(429);
  });
});
