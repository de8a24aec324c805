import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { cacheKeys } from "../../src/cache/keys";
import { authorKey } from "../../src/ingest/normalize";
import { createProviderBreakers } from "../../src/sources";
import { handleWarmBatch } from "../../src/warm/consumer";
import { handleDeadLetterBatch } from "../../src/warm/dlq";
import type { ProcessedMarker } from "../../src/warm/marker";
import type { WarmMessage } from "../../src/warm/messages";
import { jobRow, resetAll, taskCounts } from "../support/db";
import { trackingEnv } from "../support/drain";
import { waitForJob } from "../support/http";
import { counters, resetCounters } from "../support/instrumented/counters";
import { instrumentEnv } from "../support/instrumented/instrument";
import { countingKv, type QueueMessageInput, queueMessage, seedJob, warmDeps } from "../support/jobs";
import { upstream } from "../support/upstream";
import { hasCoAuthors, worksForAuthor } from "../support/upstream/catalogue.ts";

const QUEUE = "author-warming-queue";

function authorWhere(predicate: (name: string) => boolean, prefix: string): string {
  for (let i = 0; i < 10_000; i++) {
    const name = `${prefix} ${i}`;
    if (predicate(name)) return name;
  }
  throw new Error("no such author in the catalogue");
}
const soloAuthor = authorWhere((n) => !hasCoAuthors(n) && worksForAuthor(n).length > 0, "Solo Writer");
const coAuthoredAuthor = authorWhere((n) => hasCoAuthors(n), "Social Writer");

/** getQueueResult does not report retry delays, so the batch's messages record them on the way through. */
function recordingDelays(
  batch: MessageBatch<unknown>,
  delays: Map<string, number | undefined>,
): MessageBatch<unknown> {
  const messages = batch.messages.map((m) => ({
    get id() {
      return m.id;
    },
    get body() {
      return m.body;
    },
    get attempts() {
      return m.attempts;
    },
    get timestamp() {
      return m.timestamp;
    },
    ack: () => m.ack(),
    retry: (options?: QueueRetryOptions) => {
      delays.set(m.id, options?.delaySeconds);
      m.retry(options);
    },
  }));
  const recording: MessageBatch<unknown> = {
    queue: batch.queue,
    metadata: batch.metadata,
    messages,
    ackAll: () => batch.ackAll(),
    retryAll: (o?: QueueRetryOptions) => batch.retryAll(o),
  };
  return recording;
}

async function runBatch(messages: QueueMessageInput[], deps = warmDeps()) {
  const batch = createMessageBatch(QUEUE, messages);
  const ctx = createExecutionContext();
  const delays = new Map<string, number | undefined>();
  // Tracked: fan-out and deferred copies go to the real queue, and the test waits for them before it ends.
  await handleWarmBatch(recordingDelays(batch, delays), trackingEnv(), deps);
  return { ...(await getQueueResult(batch, ctx)), delays };
}

describe("warm consumer", () => {
  beforeEach(resetAll);

  it("acks a warmed author, writes its works to KV and D1, marks it processed and completes the job", async () => {
    const { jobId, messages } = await seedJob([soloAuthor], 0);
    const message = queueMessage(messages[0]);
    const result = await runBatch([message]);
    expect(result.explicitAcks).toEqual([message.id]);
    expect(result.retryMessages).toEqual([]);

    const expected = worksForAuthor(soloAuthor);
    const task = await env.DB.prepare("SELECT * FROM tasks WHERE job_id = ?1")
      .bind(jobId)
      .first<{ status: string; works_count: number; attempts: number }>();
    expect(task).toMatchObject({ status: "done", works_count: expected.length, attempts: 1 });
    const job = await jobRow(jobId);
    expect(job).toMatchObject({ status: "completed", done_count: 1, works_cached: expected.length });

    const list = await env.CACHE.get<{ works: { title: string }[] }>(
      cacheKeys.authorWorks(soloAuthor),
      "json",
    );
    expect(list?.works.map((w) => w.title).sort()).toEqual(expected.map((w) => w.title).sort());
    const withIsbn = expected.find((w) => w.isbn13s.length > 0);
    expect(withIsbn).toBeDefined();
    const byIsbn = await env.CACHE.get<{ title: string }>(
      cacheKeys.bookByIsbn(withIsbn?.isbn13s[0] ?? ""),
      "json",
    );
    expect(byIsbn?.title).toBe(withIsbn?.title);
    const marker = await env.CACHE.get<ProcessedMarker>(cacheKeys.processedMarker(soloAuthor), "json");
    expect(marker).toMatchObject({ worksCount: expected.length, depthExplored: 0, jobId });
    const rows = await env.DB.prepare("SELECT COUNT(*) AS n FROM author_works WHERE author_key = ?1")
      .bind(authorKey(soloAuthor))
      .first<{ n: number }>();
    expect(rows?.n).toBe(expected.length);
  });

  it("on the happy path a message batch costs one D1 write batch (and the job-state read), plus one claim batch when it admits", async () => {
    const { jobId, messages } = await seedJob([soloAuthor, coAuthoredAuthor], 1);
    resetCounters();
    const batch = createMessageBatch(
      QUEUE,
      messages.map((m) => queueMessage(m)),
    );
    await handleWarmBatch(batch, instrumentEnv(trackingEnv()), warmDeps());
    const result = await getQueueResult(batch, createExecutionContext());
    expect(result.explicitAcks).toHaveLength(2);
    // The job-state read (#12), the write batch (which also reads the running jobs' windows), and the
    // admission's claim batch (#13): the co-authors it wrote `pending` are admitted through the window.
    expect(counters).toMatchObject({ d1Batches: 3, queueSendBatchCalls: 1 });
    const children = await env.DB.prepare(
      "SELECT status, COUNT(*) AS n FROM tasks WHERE job_id = ?1 AND depth = 1 GROUP BY status",
    )
      .bind(jobId)
      .all<{ status: string; n: number }>();
    expect(children.results).toEqual([{ status: "queued", n: counters.queueMessagesSent }]);
    expect(counters.queueMessagesSent).toBeGreaterThan(0);
    expect(await taskCounts(jobId)).toMatchObject({ done: 2, queued: counters.queueMessagesSent });
  });

  it("with nothing waiting to be admitted a batch costs the job-state read and one D1 batch, and sends nothing", async () => {
    const { jobId, messages } = await seedJob([soloAuthor, coAuthoredAuthor], 0);
    resetCounters();
    const batch = createMessageBatch(
      QUEUE,
      messages.map((m) => queueMessage(m)),
    );
    await handleWarmBatch(batch, instrumentEnv(trackingEnv()), warmDeps());
    expect((await getQueueResult(batch, createExecutionContext())).explicitAcks).toHaveLength(2);
    expect(counters).toMatchObject({ d1Batches: 2, queueSendBatchCalls: 0 });
    expect(await taskCounts(jobId)).toEqual({ done: 2 });
  });

  it("co-authors whose messages could not be sent go back to pending for the sweeper", async () => {
    const { jobId, messages } = await seedJob([coAuthoredAuthor], 1);
    const failingQueue = {
      send: () => Promise.reject(new Error("queue down")),
      sendBatch: () => Promise.reject(new Error("queue down")),
    };
    const batch = createMessageBatch(QUEUE, [queueMessage(messages[0])]);
    await handleWarmBatch(batch, { ...env, WARM_QUEUE: failingQueue as unknown as Queue }, warmDeps());
    expect((await getQueueResult(batch, createExecutionContext())).explicitAcks).toHaveLength(1);
    const counts = await taskCounts(jobId);
    expect(counts.done).toBe(1);
    expect(counts.pending).toBeGreaterThan(0);
    expect(counts.queued).toBeUndefined();
  });

  it("acks instead of retrying a failed copy whose task has moved on to a newer message", async () => {
    upstream.configure({ statusRates: { "503": 1 } });
    const { jobId, messages } = await seedJob([soloAuthor], 0);
    await env.DB.prepare("UPDATE tasks SET generation = 1 WHERE job_id = ?1").bind(jobId).run();
    const stale = queueMessage({ ...messages[0], gen: 0 });
    const result = await runBatch([stale]);
    expect(result.explicitAcks).toEqual([stale.id]);
    expect(result.retryMessages).toEqual([]);
    expect(
      await env.DB.prepare("SELECT status, failures, attempts, error FROM tasks WHERE job_id = ?1")
        .bind(jobId)
        .first(),
    ).toEqual({ status: "queued", failures: 0, attempts: 0, error: null });
  });

  it("retries a transient upstream failure with a delay and keeps the task open with its error", async () => {
    upstream.configure({ statusRates: { "503": 1 }, retryAfterSeconds: 7 });
    const { jobId, messages } = await seedJob([soloAuthor], 0);
    const message = queueMessage(messages[0]);
    const result = await runBatch([message]);
    expect(result.explicitAcks).toEqual([]);
    expect(result.retryMessages).toEqual([{ msgId: message.id }]);
    // Retry-After (7 s) is a floor under the backoff, which is 0 s in tests.
    expect(result.delays.get(message.id)).toBe(7);
    const task = await env.DB.prepare("SELECT status, error, attempts FROM tasks WHERE job_id = ?1")
      .bind(jobId)
      .first<{ status: string; error: string; attempts: number }>();
    expect(task?.status).toBe("queued");
    expect(task?.error).toMatch(/503/);
    expect((await jobRow(jobId))?.status).toBe("running");
  });

  it("acks a permanent failure with the task failed and its reason", async () => {
    const rejecting: typeof fetch = async () => new Response("{}", { status: 404 });
    const { jobId, messages } = await seedJob([soloAuthor], 0);
    const message = queueMessage(messages[0]);
    const result = await runBatch([message], warmDeps({ fetch: rejecting }));
    expect(result.explicitAcks).toEqual([message.id]);
    expect(result.retryMessages).toEqual([]);
    const task = await env.DB.prepare("SELECT status, error FROM tasks WHERE job_id = ?1")
      .bind(jobId)
      .first<{ status: string; error: string }>();
    expect(task?.status).toBe("failed");
    expect(task?.error).toMatch(/upstream_rejected/);
    expect(await jobRow(jobId)).toMatchObject({ status: "completed_with_errors", failed_count: 1 });
  });

  it("acks only the healthy message when one author of the batch fails (once groups are split)", async () => {
    upstream.configure({ failingAuthors: [coAuthoredAuthor] });
    const { messages } = await seedJob([soloAuthor, coAuthoredAuthor], 0);
    // First delivery: both share one grouped request, which fails, so both go round again.
    const first = await runBatch([queueMessage(messages[0]), queueMessage(messages[1])]);
    expect(first.retryMessages).toHaveLength(2);
    // Third delivery: one author per request, so the healthy one is done and only the bad one retried.
    const [good, bad] = [queueMessage(messages[0], 3), queueMessage(messages[1], 3)];
    const result = await runBatch([good, bad]);
    expect(result.explicitAcks).toEqual([good.id]);
    expect(result.retryMessages.map((r: { msgId: string }) => r.msgId)).toEqual([bad.id]);
  });

  it("keeps a re-sent message out of its failing neighbour's group: grouping follows the author's own failures", async () => {
    upstream.configure({ failingAuthors: [coAuthoredAuthor] });
    const { jobId, messages } = await seedJob([soloAuthor, coAuthoredAuthor], 0);
    // Both failed twice in one group, then the dead-letter consumer sent each a fresh copy: a new generation
    // and attempt 1 again. Grouped by attempt alone they would share a request (and fail) once more.
    await env.DB.prepare("UPDATE tasks SET failures = 2, failure_mark = 2, generation = 1 WHERE job_id = ?1")
      .bind(jobId)
      .run();
    const [good, bad] = messages.map((m) => queueMessage({ ...m, gen: 1 }, 1)) as [
      QueueMessageInput<unknown>,
      QueueMessageInput<unknown>,
    ];
    const result = await runBatch([good, bad]);
    expect(result.explicitAcks).toEqual([good.id]);
    expect(result.retryMessages.map((r: { msgId: string }) => r.msgId)).toEqual([bad.id]);
    const tasks = await env.DB.prepare("SELECT author_key, status, failures FROM tasks WHERE job_id = ?1")
      .bind(jobId)
      .all<{ author_key: string; status: string; failures: number }>();
    const byKey = Object.fromEntries(tasks.results.map((t) => [t.author_key, t]));
    expect(byKey[authorKey(soloAuthor)]).toMatchObject({ status: "done", failures: 2 });
    expect(byKey[authorKey(coAuthoredAuthor)]).toMatchObject({ status: "queued", failures: 3 });
  });

  it("skips an author whose marker explored at least as deep, and warms one explored too shallowly", async () => {
    const marker: ProcessedMarker = {
      worksCount: 3,
      lastWarmed: new Date().toISOString(),
      depthExplored: 2,
      jobId: "old",
    };
    await env.CACHE.put(cacheKeys.processedMarker(soloAuthor), JSON.stringify(marker));
    const shallow: ProcessedMarker = { ...marker, depthExplored: 0 };
    await env.CACHE.put(cacheKeys.processedMarker(coAuthoredAuthor), JSON.stringify(shallow));
    const { jobId, messages } = await seedJob([soloAuthor, coAuthoredAuthor], 1);
    // Every URL the consumer asks for, decoded, so the test can see whose works were fetched.
    const asked: string[] = [];
    const recording: typeof fetch = (input, init) => {
      const url = new Request(input, init).url;
      asked.push(decodeURIComponent(url.replace(/\+/g, " ")));
      return upstream.fetch(input, init);
    };
    await runBatch(
      messages.map((m) => queueMessage(m)),
      warmDeps({ fetch: recording }),
    );
    const tasks = await env.DB.prepare("SELECT author_key, status FROM tasks WHERE job_id = ?1 AND depth = 0")
      .bind(jobId)
      .all<{ author_key: string; status: string }>();
    const status = Object.fromEntries(tasks.results.map((t) => [t.author_key, t.status]));
    expect(status[authorKey(soloAuthor)]).toBe("skipped");
    expect(status[authorKey(coAuthoredAuthor)]).toBe("done");
    // Only the shallow author reached the sources.
    expect(asked.some((url) => url.includes(coAuthoredAuthor))).toBe(true);
    expect(asked.filter((url) => url.includes(soloAuthor))).toEqual([]);
  });

  it("fans out to co-authors at depth + 1 when maxDepth allows, and not at all when maxDepth is 0", async () => {
    const coAuthors = new Set(
      worksForAuthor(coAuthoredAuthor)
        .flatMap((w) => w.authors)
        .filter((a) => a !== coAuthoredAuthor)
        .map(authorKey),
    );
    expect(coAuthors.size).toBeGreaterThan(0);

    const deep = await seedJob([coAuthoredAuthor], 1);
    await runBatch([queueMessage(deep.messages[0])]);
    const children = await env.DB.prepare(
      "SELECT author_key, depth, parent_key FROM tasks WHERE job_id = ?1 AND depth = 1",
    )
      .bind(deep.jobId)
      .all<{ author_key: string; depth: number; parent_key: string }>();
    expect(new Set(children.results.map((c) => c.author_key))).toEqual(coAuthors);
    expect(children.results.every((c) => c.parent_key === authorKey(coAuthoredAuthor))).toBe(true);
    expect((await jobRow(deep.jobId))?.total_tasks).toBe(1 + coAuthors.size);

    await resetAll();
    const flat = await seedJob([coAuthoredAuthor], 0);
    await runBatch([queueMessage(flat.messages[0])]);
    expect(await taskCounts(flat.jobId)).toEqual({ done: 1 });
    expect(await jobRow(flat.jobId)).toMatchObject({ status: "completed", total_tasks: 1 });
  });

  it("counts nothing twice when the same message is delivered again, in another batch or the same one", async () => {
    const { jobId, messages } = await seedJob([soloAuthor], 0);
    await runBatch([queueMessage(messages[0])]);
    const after = await jobRow(jobId);
    const again = queueMessage(messages[0], 2);
    const second = await runBatch([again]);
    expect(second.explicitAcks).toEqual([again.id]);
    expect(await jobRow(jobId)).toMatchObject({
      done_count: after?.done_count,
      works_cached: after?.works_cached,
      total_tasks: after?.total_tasks,
    });

    await resetAll();
    const twin = await seedJob([soloAuthor], 0);
    const [a, b] = [queueMessage(twin.messages[0]), queueMessage(twin.messages[0])];
    const result = await runBatch([a, b]);
    expect(result.explicitAcks.sort()).toEqual([a.id, b.id].sort());
    expect(await jobRow(twin.jobId)).toMatchObject({
      done_count: 1,
      works_cached: worksForAuthor(soloAuthor).length,
    });
  });

  it("while every provider's breaker is open, a message is re-sent as a fresh copy, keeping its retry allowance", async () => {
    // A short cool-down: the deferred copy comes back through the real queue after it, and the test waits.
    const breakers = createProviderBreakers({ coolDownMs: 1000 });
    for (const breaker of Object.values(breakers))
      while (breaker.snapshot().state !== "open") breaker.recordFailure();
    const { jobId, messages } = await seedJob([soloAuthor], 0);
    const message = queueMessage(messages[0]);
    const before = upstream.stats().total;
    const result = await runBatch([message], warmDeps({ breakers }));
    expect(result.explicitAcks).toEqual([message.id]);
    expect(result.retryMessages).toEqual([]);
    expect(upstream.stats().total).toBe(before);
    const task = await env.DB.prepare("SELECT status, error FROM tasks WHERE job_id = ?1")
      .bind(jobId)
      .first<{ error: string }>();
    expect(task?.error).toMatch(/^deferred: .*circuit breaker is open/);
  });

  it("a deferral hands the task to a fresh message one generation on; a stray copy of the old one changes nothing", async () => {
    // A short cool-down: the deferred copy comes back through the real queue after it, and the test waits.
    const breakers = createProviderBreakers({ coolDownMs: 1000 });
    for (const breaker of Object.values(breakers))
      while (breaker.snapshot().state !== "open") breaker.recordFailure();
    const { jobId, messages } = await seedJob([soloAuthor], 0);
    await runBatch([queueMessage(messages[0])], warmDeps({ breakers }));
    const task = await env.DB.prepare("SELECT generation, attempts FROM tasks WHERE job_id = ?1")
      .bind(jobId)
      .first();
    expect(task).toMatchObject({ generation: 1 });
    // A redelivered copy of the original (generation 0) is claimed first: acked, nothing sent upstream.
    const before = upstream.stats().total;
    const redelivered = queueMessage({ ...messages[0], gen: 0 }, 2);
    expect((await runBatch([redelivered], warmDeps())).explicitAcks).toEqual([redelivered.id]);
    expect(upstream.stats().total).toBe(before);
    // A duplicate first delivery of it is not claimed (the happy path has no claim): it is fetched, but its
    // write is refused, so the task, the job's counters and the processed marker are untouched, and it is acked.
    const stray = queueMessage({ ...messages[0], gen: 0 });
    const result = await runBatch([stray], warmDeps());
    expect(result.explicitAcks).toEqual([stray.id]);
    expect(result.retryMessages).toEqual([]);
    expect(upstream.stats().total).toBeGreaterThan(before);
    expect(
      await env.DB.prepare("SELECT status, generation, attempts FROM tasks WHERE job_id = ?1")
        .bind(jobId)
        .first(),
    ).toEqual({ status: "queued", generation: 1, attempts: (task as { attempts: number }).attempts });
    expect(await env.DB.prepare("SELECT done_count FROM jobs WHERE id = ?1").bind(jobId).first()).toEqual({
      done_count: 0,
    });
    expect(await env.CACHE.get(cacheKeys.processedMarker(soloAuthor))).toBeNull();
    // The live copy (generation 1) then warms the author as usual.
    const live = queueMessage({ ...messages[0], gen: 1 });
    expect((await runBatch([live], warmDeps())).explicitAcks).toEqual([live.id]);
    expect(await taskCounts(jobId)).toEqual({ done: 1 });
  });

  it("when a stale copy and the live copy share a batch, the live one is processed whatever their order", async () => {
    const { jobId, messages } = await seedJob([soloAuthor], 0);
    await env.DB.prepare("UPDATE tasks SET generation = 1 WHERE job_id = ?1").bind(jobId).run();
    const stale = queueMessage({ ...messages[0], gen: 0 });
    const live = queueMessage({ ...messages[0], gen: 1 });
    const result = await runBatch([stale, live]);
    expect(result.explicitAcks.sort()).toEqual([stale.id, live.id].sort());
    expect(await taskCounts(jobId)).toEqual({ done: 1 });
  });

  it("acks a message that fails validation instead of throwing", async () => {
    const message = queueMessage({ jobId: 42, nonsense: true });
    const result = await runBatch([message]);
    expect(result.outcome).toBe("ok");
    expect(result.explicitAcks).toEqual([message.id]);
  });

  it("retries every message on its own when D1 is unavailable", async () => {
    const { messages } = await seedJob([soloAuthor], 0);
    const brokenEnv = {
      ...env,
      DB: { batch: () => Promise.reject(new Error("D1 down")), prepare: env.DB.prepare.bind(env.DB) },
    };
    const batch = createMessageBatch(QUEUE, [queueMessage(messages[0])]);
    const ctx = createExecutionContext();
    await handleWarmBatch(batch, brokenEnv as unknown as Env, warmDeps());
    const result = await getQueueResult(batch, ctx);
    expect(result.retryMessages).toHaveLength(1);
    expect(result.explicitAcks).toEqual([]);
  });
});

describe("dead-letter consumer", () => {
  beforeEach(resetAll);

  const deadLetter = async (body: unknown) => {
    const batch = createMessageBatch("author-warming-dlq", [queueMessage(body, 1)]);
    const ctx = createExecutionContext();
    await handleDeadLetterBatch(batch, env, { config: warmDeps().config, now: Date.now });
    return getQueueResult(batch, ctx);
  };

  it("the consumer marks a task dead at the author's 4th own failure, acking instead of retrying", async () => {
    upstream.configure({ statusRates: { "500": 1 } });
    const { jobId, messages } = await seedJob([soloAuthor], 0);
    // Fresh breakers each time: this test is about the failure allowance, not the breaker.
    for (let attempt = 1; attempt <= 3; attempt++) {
      const result = await runBatch([queueMessage(messages[0], attempt)], warmDeps());
      expect(result.retryMessages).toHaveLength(1);
    }
    expect(
      await env.DB.prepare("SELECT failures, status FROM tasks WHERE job_id = ?1").bind(jobId).first(),
    ).toEqual({
      failures: 3,
      status: "queued",
    });
    const last = queueMessage(messages[0], 4);
    const result = await runBatch([last], warmDeps());
    expect(result.explicitAcks).toEqual([last.id]);
    expect(result.retryMessages).toEqual([]);
    const task = await env.DB.prepare("SELECT status, error FROM tasks WHERE job_id = ?1")
      .bind(jobId)
      .first<{ status: string; error: string }>();
    expect(task?.status).toBe("dead");
    expect(task?.error).toMatch(/retries exhausted after 4 attempts; last error: .*500/);
    expect(await jobRow(jobId)).toMatchObject({ status: "completed_with_errors", dead_count: 1 });
  });

  it("duplicate copies of the same attempt use up the author's allowance once", async () => {
    upstream.configure({ statusRates: { "500": 1 } });
    const { jobId, messages } = await seedJob([soloAuthor], 0);
    await runBatch([queueMessage(messages[0], 1)], warmDeps());
    await runBatch([queueMessage(messages[0], 1)], warmDeps());
    expect(
      await env.DB.prepare("SELECT failures, status FROM tasks WHERE job_id = ?1").bind(jobId).first(),
    ).toEqual({
      failures: 1,
      status: "queued",
    });
  });

  it("a dead letter for an author that failed its allowance is marked dead, once", async () => {
    const { jobId, messages } = await seedJob([soloAuthor], 0);
    await env.DB.prepare(
      "UPDATE tasks SET attempts = 4, failures = 4, error = 'upstream_unavailable: 500' WHERE job_id = ?1",
    )
      .bind(jobId)
      .run();
    const result = await deadLetter(messages[0]);
    expect(result.explicitAcks).toHaveLength(1);
    const task = await env.DB.prepare("SELECT status, error FROM tasks WHERE job_id = ?1")
      .bind(jobId)
      .first<{ status: string; error: string }>();
    expect(task?.status).toBe("dead");
    expect(task?.error).toBe("retries exhausted after 4 attempts; last error: upstream_unavailable: 500");
    expect(await jobRow(jobId)).toMatchObject({ status: "completed_with_errors", dead_count: 1 });
    await deadLetter(messages[0]);
    expect((await jobRow(jobId))?.dead_count).toBe(1);
  });

  it("re-sends a dead letter whose author never failed on its own (its deliveries were lost to consumer crashes)", async () => {
    const { jobId, messages } = await seedJob([soloAuthor], 0);
    await env.DB.prepare("UPDATE tasks SET attempts = 4, failures = 0 WHERE job_id = ?1").bind(jobId).run();
    const result = await deadLetter(messages[0]);
    expect(result.explicitAcks).toHaveLength(1);
    // The fresh copy is consumed by the live queue consumer: the author gets warmed after all.
    const done = (await waitForJob(jobId)) as { status: string; counts: Record<string, number> };
    expect(done.status).toBe("completed");
    expect(done.counts).toMatchObject({ done: 1, dead: 0 });
  });

  it("re-sends a high job's dead letter on the priority lane", async () => {
    const { jobId, messages } = await seedJob([soloAuthor], 0);
    await env.DB.batch([
      env.DB.prepare("UPDATE tasks SET attempts = 4, failures = 0 WHERE job_id = ?1").bind(jobId),
      env.DB.prepare("UPDATE jobs SET priority = 'high' WHERE id = ?1").bind(jobId),
    ]);
    const sent: { queue: string; body: WarmMessage }[] = [];
    const recording = (queue: string) =>
      ({
        sendBatch: async (list: Iterable<MessageSendRequest<WarmMessage>>) => {
          for (const m of list) sent.push({ queue, body: m.body });
        },
      }) as unknown as Queue;
    const bindings = { ...env, WARM_QUEUE: recording("authors"), PRIORITY_QUEUE: recording("priority") };
    const batch = createMessageBatch("author-warming-dlq", [queueMessage(messages[0], 1)]);
    await handleDeadLetterBatch(batch, bindings, { config: warmDeps().config, now: Date.now });
    expect(sent.map((s) => [s.queue, s.body.authorKey, s.body.lane])).toEqual([
      ["priority", authorKey(soloAuthor), "priority"],
    ]);
    // Nothing of this job may reach a consumer after the test.
    await env.DB.prepare("UPDATE jobs SET status = 'cancelled' WHERE id = ?1").bind(jobId).run();
  });

  it("gives up after MAX_TOTAL_ATTEMPTS deliveries of any kind", async () => {
    const { jobId, messages } = await seedJob([soloAuthor], 0);
    await env.DB.prepare("UPDATE tasks SET attempts = 12, failures = 1 WHERE job_id = ?1").bind(jobId).run();
    await deadLetter(messages[0]);
    expect(await jobRow(jobId)).toMatchObject({ status: "completed_with_errors", dead_count: 1 });
  });
});

describe("per-invocation budgets", () => {
  beforeEach(resetAll);

  it("never livelocks: a batch of prolific authors finishes some of them in every invocation", async () => {
    const prolific: string[] = [];
    for (let i = 0; prolific.length < 10; i++) {
      if (worksForAuthor(`Prolific Writer ${i}`).length >= 100) prolific.push(`Prolific Writer ${i}`);
    }
    const { jobId, messages } = await seedJob(prolific, 0);
    // A little latency makes the authors' page requests interleave, as they do over a real network.
    upstream.configure({ latencyMs: 5 });
    // With a rate limiter every request costs two subrequests: 50 buys 25 requests, 10 authors need ~50.
    const deps = warmDeps({ rateLimiter: { acquire: async () => {}, pause: async () => {} } });
    let pending = messages;
    for (let invocation = 0; invocation < 10 && pending.length > 0; invocation++) {
      await runBatch(
        pending.map((m) => queueMessage(m)),
        deps,
      );
      const open = await env.DB.prepare(
        "SELECT author_key, generation FROM tasks WHERE job_id = ?1 AND status != 'done'",
      )
        .bind(jobId)
        .all<{ author_key: string; generation: number }>();
      const stillOpen = new Map(open.results.map((r) => [r.author_key, r.generation]));
      // Each invocation must complete at least one author, or the batch would come back unchanged forever.
      expect(stillOpen.size).toBeLessThan(pending.length);
      // Deferred authors were handed to fresh messages (a newer generation): send those, as the queue would.
      pending = pending
        .filter((m) => stillOpen.has(m.authorKey))
        .map((m) => ({ ...m, gen: stillOpen.get(m.authorKey) ?? 0 }));
    }
    expect(pending).toEqual([]);
  });

  it("a batch of 100 stays within 50 subrequests, 1,000 KV operations and one analytics point; the rest is deferred, not failed", async () => {
    const authors = Array.from({ length: 100 }, (_, i) => `Budget Writer ${i}`);
    const { jobId, messages } = await seedJob(authors, 0);
    const counting = countingKv();
    let points = 0;
    const countingEnv = {
      ...trackingEnv(),
      CACHE: counting.kv,
      WARMING_ANALYTICS: { writeDataPoint: () => points++ },
    } as unknown as Env;
    const before = upstream.stats().total;

    const batch = createMessageBatch(
      QUEUE,
      messages.map((m) => queueMessage(m)),
    );
    const ctx = createExecutionContext();
    await handleWarmBatch(batch, countingEnv, warmDeps());
    const result = await getQueueResult(batch, ctx);

    const requests = upstream.stats().total - before;
    expect(requests).toBeLessThanOrEqual(50);
    expect(requests).toBeGreaterThan(0);
    expect(counting.operations()).toBeLessThanOrEqual(1000);
    expect(points).toBe(1);
    // Every message is settled on its own: warmed ones acked, deferred ones re-sent as fresh messages and acked.
    expect(result.explicitAcks).toHaveLength(100);
    expect(result.retryMessages).toEqual([]);
    const rows = await env.DB.prepare("SELECT status, error FROM tasks WHERE job_id = ?1")
      .bind(jobId)
      .all<{ status: string; error: string | null }>();
    const done = rows.results.filter((r) => r.status === "done").length;
    const deferred = rows.results.filter((r) => r.error?.startsWith("deferred")).length;
    expect(done).toBeGreaterThan(0);
    expect(done + deferred).toBe(100);
    expect(rows.results.some((r) => r.status === "failed" || r.status === "dead")).toBe(false);
  });
});
