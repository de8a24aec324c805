import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { createApp } from "../../src/api/app";
import { cacheKeys } from "../../src/cache/keys";
import { createCache } from "../../src/cache/kv";
import { loadConfig } from "../../src/config";
import { isValidIsbn13 } from "../../src/ingest/isbn";
import { CircuitBreaker } from "../../src/lib/breaker";
import { createProviderBreakers, fetchAuthorWorks } from "../../src/sources";
import { handleWarmBatch, type WarmDeps } from "../../src/warm/consumer";
import {
  queueOf,
  SEND_BATCH_MAX_BYTES,
  SEND_BATCH_MAX_MESSAGES,
  sendWarmMessages,
  type WarmMessage,
  warmMessageFor,
} from "../../src/warm/messages";
import { jobRow, resetAll, taskCounts } from "../support/db";
import { trackingEnv } from "../support/drain";
import { callAsAdmin, waitForJob } from "../support/http";
import { countingKv, queueMessage, seedJob, warmDeps } from "../support/jobs";
import { worksForAuthor } from "../support/upstream/catalogue.ts";

/** Pins README claims that had no test, or only one that could not fail. */

const QUEUE = "author-warming-queue";

function authorsWithWorks(count: number, prefix: string, max = 40): string[] {
  const names: string[] = [];
  for (let i = 0; names.length < count; i++) {
    const n = worksForAuthor(`${prefix} ${i}`).length;
    if (n >= 3 && n <= max) names.push(`${prefix} ${i}`);
  }
  return names;
}

async function runBatch(messages: ReturnType<typeof queueMessage>[], deps: WarmDeps, batchEnv: Env) {
  const batch = createMessageBatch(QUEUE, messages);
  const ctx = createExecutionContext();
  await handleWarmBatch(batch, batchEnv, deps);
  return getQueueResult(batch, ctx);
}

async function taskRows(jobId: string) {
  const { results } = await env.DB.prepare(
    "SELECT author_key, status, error FROM tasks WHERE job_id = ?1 ORDER BY author_key",
  )
    .bind(jobId)
    .all<{ author_key: string; status: string; error: string | null }>();
  return results;
}

describe("provider breaker: 4xx and 429 answers mean the provider is up", () => {
  beforeEach(resetAll);

  const answering =
    (status: number, headers: Record<string, string> = {}): typeof fetch =>
    async () =>
      new Response(JSON.stringify({ error: "no" }), {
        status,
        headers: { "content-type": "application/json", ...headers },
      });

  /** Asks both providers for an author `calls` times with every answer `status`; returns the breakers. */
  async function callRepeatedly(fetcher: typeof fetch, calls: number) {
    const breakers = createProviderBreakers();
    for (let i = 0; i < calls; i++) {
      await expect(
        fetchAuthorWorks("Anyone At All", { config: loadConfig(env), fetch: fetcher, breakers }),
      ).rejects.toThrow();
    }
    return breakers;
  }

  it.each([
    [400, {}],
    [404, {}],
    [429, { "retry-after": "0" }],
  ])("%i, ten calls in a row, leaves both breakers closed", async (status, headers) => {
    const breakers = await callRepeatedly(answering(status, headers), 10);
    expect(breakers.openlibrary.snapshot()).toMatchObject({ state: "closed", consecutiveFailures: 0 });
    expect(breakers.googlebooks.snapshot()).toMatchObject({ state: "closed", consecutiveFailures: 0 });
  });

  it("while an outage (503) opens them after five calls", async () => {
    const breakers = await callRepeatedly(answering(503, { "retry-after": "0" }), 5);
    expect(breakers.openlibrary.snapshot().state).toBe("open");
    expect(breakers.googlebooks.snapshot().state).toBe("open");
  });
});

describe("the KV-operation budget defers work, never fails it", () => {
  beforeEach(resetAll);

  it("a batch that needs more KV operations than KV_OPERATION_BUDGET warms what fits and defers the rest", async () => {
    const authors = authorsWithWorks(6, "Kv Budget Writer", 20);
    const budget = 40;
    const config = loadConfig({ ...env, KV_OPERATION_BUDGET: String(budget) });
    const { jobId, messages } = await seedJob(authors, 0);
    const counting = countingKv();
    const countingEnv = { ...trackingEnv(), CACHE: counting.kv } as unknown as Env;
    const result = await runBatch(
      messages.map((m) => queueMessage(m)),
      warmDeps({ config }),
      countingEnv,
    );
    expect(counting.operations()).toBeLessThanOrEqual(budget);
    // Every message is settled on its own and none is retried: nobody used up an attempt.
    expect(result.explicitAcks).toHaveLength(authors.length);
    expect(result.retryMessages).toEqual([]);
    const rows = await taskRows(jobId);
    const done = rows.filter((r) => r.status === "done");
    const deferred = rows.filter((r) => r.status === "queued" && r.error === "deferred: KV budget reached");
    expect(done.length).toBeGreaterThan(0);
    expect(deferred.length).toBeGreaterThan(0);
    expect(done.length + deferred.length).toBe(authors.length);
    // Whoever is done has its works list and marker in KV.
    for (const name of authors.filter((a) => done.some((d) => d.author_key === a.toLowerCase()))) {
      expect(await env.CACHE.get(cacheKeys.authorWorks(name))).not.toBeNull();
      expect(await env.CACHE.get(cacheKeys.processedMarker(name))).not.toBeNull();
    }
  });
});

describe("the warmer keeps going when KV rejects every call", () => {
  beforeEach(resetAll);

  it("no crash, no author done without its works in KV: each is retried or re-sent, none failed", async () => {
    const authors = authorsWithWorks(5, "Kv Down Writer");
    const { jobId, messages } = await seedJob(authors, 0);
    const refuse = async () => {
      throw new Error("KV failed: 503 service unavailable");
    };
    const downKv = { get: refuse, put: refuse, delete: refuse, list: refuse } as unknown as KVNamespace;
    // Its own breaker (as the isolate's opens after 3 failures) with a 1 s cool-down, so the re-sent copies
    // come back through the real queue soon after (and the test waits for them).
    const breaker = new CircuitBreaker("kv", { failureThreshold: 3, coolDownMs: 1000 });
    const result = await runBatch(
      messages.map((m) => queueMessage(m)),
      warmDeps({ cache: createCache(downKv, { breaker }) }),
      trackingEnv(),
    );
    expect(result.outcome).toBe("ok");
    expect(result.explicitAcks.length + result.retryMessages.length).toBe(authors.length);
    const rows = await taskRows(jobId);
    expect(rows.map((r) => r.status)).toEqual(authors.map(() => "queued"));
    for (const row of rows) {
      expect(row.error).toMatch(/^(cache_write_failed: |deferred: KV unavailable)/);
    }
    // The breaker opened on the way: later authors were re-sent, not retried.
    expect(rows.some((r) => r.error?.startsWith("deferred: KV unavailable"))).toBe(true);
    expect(await jobRow(jobId)).toMatchObject({
      done_count: 0,
      failed_count: 0,
      dead_count: 0,
      works_cached: 0,
    });
    for (const name of authors) expect(await env.CACHE.get(cacheKeys.processedMarker(name))).toBeNull();
  });
});

describe("redrive", () => {
  beforeEach(resetAll);

  it("sends failed tasks (not only dead ones) round again, and they come home", async () => {
    const [author] = authorsWithWorks(1, "Redriven Writer");
    const { jobId, messages } = await seedJob([author as string], 0);
    const rejecting: typeof fetch = async () => new Response("{}", { status: 404 });
    await runBatch([queueMessage(messages[0])], warmDeps({ fetch: rejecting }), trackingEnv());
    expect(await taskCounts(jobId)).toEqual({ failed: 1 });
    expect(await jobRow(jobId)).toMatchObject({ status: "completed_with_errors", failed_count: 1 });

    const redrive = await callAsAdmin(`/api/jobs/${jobId}/retry`, { method: "POST" });
    expect(redrive.status).toBe(202);
    expect(await redrive.json()).toMatchObject({ jobId, requeued: 1 });
    const task = await env.DB.prepare("SELECT history FROM tasks WHERE job_id = ?1")
      .bind(jobId)
      .first<{ history: string }>();
    expect(JSON.parse(task?.history ?? "[]")).toMatchObject([{ status: "failed" }]);

    // The stand-in knows the author: the real queue's consumer warms it.
    const done = (await waitForJob(jobId)) as { status: string; counts: Record<string, number> };
    expect(done.status).toBe("completed");
    expect(done.counts).toMatchObject({ done: 1, failed: 0 });
  });
});

describe("/health", () => {
  beforeEach(resetAll);

  const health = (bindings: Env) =>
    createApp().fetch(new Request("http://kindling.test/health"), bindings, createExecutionContext());

  it("answers 200 when every binding answers", async () => {
    const response = await health(env);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ status: "ok" });
  });

  it("answers 503 when D1 fails", async () => {
    const brokenDb = {
      prepare: () => {
        throw new Error("D1 down");
      },
    } as unknown as D1Database;
    const response = await health({ ...env, DB: brokenDb });
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({
      status: "degraded",
      checks: { d1: { ok: false }, kv: { ok: true }, queues: { ok: true } },
    });
  });

  it("answers 503 when KV fails", async () => {
    const down = async () => {
      throw new Error("KV down");
    };
    const response = await health({ ...env, CACHE: { get: down } as unknown as KVNamespace });
    expect([response.status, await response.json()]).toMatchObject([
      503,
      { status: "degraded", checks: { d1: { ok: true }, kv: { ok: false } } },
    ]);
  });
});

describe("KV keys over 512 bytes", () => {
  it("are the prefix and a 64-bit hash of the natural key, distinct for names that share a long start", () => {
    const long = "a".repeat(600);
    const key = cacheKeys.authorWorks(`${long} one`);
    expect(key).toMatch(/^author:works:#[0-9a-f]{16}$/);
    expect(cacheKeys.authorWorks(`${long} two`)).not.toBe(key);
    expect(cacheKeys.authorWorks(`${long} one`)).toBe(key);
    expect(cacheKeys.processedMarker(`${long} one`)).toMatch(/^warming:processed:#[0-9a-f]{16}$/);
    // A title half past 240 bytes is hashed on its own; the author half stays readable.
    expect(cacheKeys.bookByTitle("t".repeat(300), "Short Name")).toMatch(
      /^book:title:#[0-9a-f]{16}\|short name$/,
    );
    // Keys that fit are left as they are.
    expect(cacheKeys.authorWorks("Ursula K. Le Guin")).toBe("author:works:ursula k. le guin");
  });
});

describe("sends are split at the platform's sendBatch limits", () => {
  /** A queue that records each sendBatch call's messages in `calls`. */
  function queueInto(calls: { body: unknown }[][]): Queue<WarmMessage> {
    return {
      send: async () => {
        throw new Error("send is not used");
      },
      sendBatch: async (messages: Iterable<{ body: unknown }>) => {
        calls.push([...messages]);
      },
    } as unknown as Queue<WarmMessage>;
  }
  /** Both warm queues recorded; author messages only unless a test says otherwise (the ISBN queue sees none). */
  function recordingQueue() {
    const calls: { body: unknown }[][] = [];
    const isbnCalls: { body: unknown }[][] = [];
    const priorityCalls: { body: unknown }[][] = [];
    const queues = {
      authors: queueInto(calls),
      isbns: queueInto(isbnCalls),
      priority: queueInto(priorityCalls),
    };
    return { calls, queues, isbnCalls, priorityCalls };
  }
  const bytes = (call: { body: unknown }[]) =>
    call.reduce((n, m) => n + new TextEncoder().encode(JSON.stringify(m.body)).byteLength, 0);
  const message = (i: number, name = `Writer ${i}`): WarmMessage => ({
    v: 1,
    jobId: "job",
    authorKey: name.toLowerCase(),
    authorName: name,
    depth: 0,
    maxDepth: 0,
    gen: 0,
  });

  it("250 messages go out in 3 sendBatch calls of at most 100", async () => {
    const { queues, calls, isbnCalls } = recordingQueue();
    const result = await sendWarmMessages(
      queues,
      Array.from({ length: 250 }, (_, i) => message(i)),
    );
    expect(calls.map((c) => c.length)).toEqual([100, 100, 50]);
    expect(isbnCalls).toEqual([]);
    expect(SEND_BATCH_MAX_MESSAGES).toBe(100);
    for (const call of calls) expect(bytes(call)).toBeLessThanOrEqual(256 * 1024);
    expect(result).toMatchObject({ calls: 3, unsent: [], invalid: [] });
    expect(result.sent).toHaveLength(250);
  });

  it("100 large messages (over 256 KB together) are split by size", async () => {
    const { queues, calls } = recordingQueue();
    // 300 three-byte characters of name and 900 of key: about 3.6 KB a message, 360 KB for 100.
    const big = (i: number): WarmMessage => ({
      ...message(i),
      authorName: `${i}`.padEnd(300, "語"),
      authorKey: `${i}`.padEnd(900, "語"),
    });
    const messages = Array.from({ length: 100 }, (_, i) => big(i));
    expect(bytes(messages.map((body) => ({ body })))).toBeGreaterThan(SEND_BATCH_MAX_BYTES);
    const result = await sendWarmMessages(queues, messages);
    expect(calls.length).toBeGreaterThanOrEqual(2);
    for (const call of calls) expect(bytes(call)).toBeLessThanOrEqual(SEND_BATCH_MAX_BYTES);
    expect(result.sent).toHaveLength(100);
    expect(result.invalid).toEqual([]);
  });

  const isbn = (i: number): WarmMessage => {
    const first12 = `978${String(100_000_000 + i)}`;
    const isbn13 = [..."0123456789"].map((d) => first12 + d).find(isValidIsbn13) as string;
    return { ...message(i), authorKey: `isbn:${isbn13}`, authorName: `ISBN ${isbn13}` };
  };

  it("each message goes to its kind's queue: ISBN items to the ISBN queue, authors to the author queue", async () => {
    const { queues, calls, isbnCalls } = recordingQueue();
    const isbnMessages = Array.from({ length: 130 }, (_, i) => isbn(i));
    const authors = Array.from({ length: 30 }, (_, i) => message(i));
    const mixed = [...authors.slice(0, 15), ...isbnMessages, ...authors.slice(15)];
    const result = await sendWarmMessages(queues, mixed);
    const bodies = (list: { body: unknown }[][]) => list.flat().map((m) => (m.body as WarmMessage).authorKey);
    expect(bodies(calls).sort()).toEqual(authors.map((m) => m.authorKey).sort());
    expect(bodies(isbnCalls).sort()).toEqual(isbnMessages.map((m) => m.authorKey).sort());
    expect(isbnCalls.map((c) => c.length)).toEqual([100, 30]);
    expect(result.calls).toBe(calls.length + isbnCalls.length);
    expect(result.sent).toHaveLength(mixed.length);
    expect(queueOf(isbnMessages[0] as WarmMessage)).toBe("isbns");
    expect(queueOf(authors[0] as WarmMessage)).toBe("authors");
  });

  it("a high job's items of either kind ride the priority lane; the rest go by kind", async () => {
    const { queues, calls, isbnCalls, priorityCalls } = recordingQueue();
    const high = [
      { ...message(1), lane: "priority" as const },
      { ...isbn(2), lane: "priority" as const },
    ];
    const rest = [message(3), isbn(4)];
    const result = await sendWarmMessages(queues, [...rest, ...high]);
    const keys = (list: { body: unknown }[][]) => list.flat().map((m) => (m.body as WarmMessage).authorKey);
    expect(keys(priorityCalls)).toEqual(high.map((m) => m.authorKey));
    expect(keys(calls)).toEqual([message(3).authorKey]);
    expect(keys(isbnCalls)).toEqual([isbn(4).authorKey]);
    expect(result.sent).toHaveLength(4);
    // The lane is set where a task row becomes a message, from its job's priority as the statement read it.
    const row = { job_id: "j", author_key: "k", author_name: "K", depth: 0, max_depth: 1, generation: 0 };
    expect(warmMessageFor({ ...row, priority: "high" }).lane).toBe("priority");
    expect(warmMessageFor({ ...row, priority: "normal" })).not.toHaveProperty("lane");
    expect(warmMessageFor(row)).not.toHaveProperty("lane");
  });
});
