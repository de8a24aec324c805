import {
  createExecutionContext,
  createMessageBatch,
  createScheduledController,
  getQueueResult,
  introspectWorkflow,
  waitOnExecutionContext,
} from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { workHash } from "../../src/cache/content-hash";
import { cacheKeys } from "../../src/cache/keys";
import { createCache } from "../../src/cache/kv";
import type { AuthorWorksEntry } from "../../src/cache/reader";
import { loadConfig } from "../../src/config";
import { listExpiringItems } from "../../src/db/cached-items";
import { createJobStatements } from "../../src/db/jobs";
import { markRefreshJobStatement } from "../../src/db/refresh-jobs";
import { runSteps } from "../../src/db/step";
import { markQueued } from "../../src/db/tasks";
import worker from "../../src/index";
import { authorKey } from "../../src/ingest/normalize";
import { refreshBound } from "../../src/refresh/bound";
import { refreshJobRecord } from "../../src/refresh/create-job";
import { isRefreshJob, newRefreshJobId } from "../../src/refresh/ids";
import { REFRESH_CRON, runScheduledRefresh } from "../../src/refresh/schedule";
import { durableRateLimiter } from "../../src/sources/rate-limit";
import type { ProviderRateLimiter } from "../../src/sources/rate-limiter-do";
import type { Work } from "../../src/sources/types";
import { handleWarmBatch } from "../../src/warm/consumer";
import type { ProcessedMarker } from "../../src/warm/marker";
import type { WarmMessage } from "../../src/warm/messages";
import { jobRow, resetAll, taskCounts } from "../support/db";
import { drainQueues, trackingEnv, trackJob } from "../support/drain";
import { call, TOKEN } from "../support/http";
import { queueMessage, seedJob, warmDeps } from "../support/jobs";
import { upstream } from "../support/upstream";
import { hasCoAuthors, hashFraction, worksForAuthor } from "../support/upstream/catalogue.ts";

const HOUR = 3_600_000;
const QUEUE = "author-warming-queue";

/** An author without co-authors whose works the edited catalogue (fraction 0.5) changes only in part. */
function partlyEditedAuthor(): string {
  for (let i = 0; i < 10_000; i++) {
    const name = `Refresh Writer ${i}`;
    if (hasCoAuthors(name)) continue;
    const works = worksForAuthor(name).filter((w) => w.isbn13s.length > 0);
    const edited = works.filter((w) => hashFraction(w.key, "edited") < 0.5).length;
    if (works.length >= 4 && edited > 0 && edited < works.length) return name;
  }
  throw new Error("no such author");
}

/** Provider objects named for this test only (the namespace outlives tests). */
function freshNamespace(): DurableObjectNamespace<ProviderRateLimiter> {
  const run = crypto.randomUUID();
  return {
    idFromName: (name: string) => env.RATE_LIMITER.idFromName(`${name}@${run}`),
    get: (id: DurableObjectId) => env.RATE_LIMITER.get(id),
  } as unknown as DurableObjectNamespace<ProviderRateLimiter>;
}

/** Inserts cached_items rows as the consumer would have written them. */
async function cachedItem(key: string, expiresAt: number, requestedAt: number, kind = "author") {
  await env.DB.prepare(
    `INSERT INTO cached_items (item_key, kind, name, written_at, expires_at, requested_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)`,
  )
    .bind(key, kind, key, expiresAt - 24 * HOUR, expiresAt, requestedAt)
    .run();
}

/** A refresh job with its tasks queued (no messages sent), as createRefreshJob leaves it. */
async function seedRefreshJob(names: string[]): Promise<WarmMessage[]> {
  const jobId = newRefreshJobId();
  const now = Date.now();
  const record = refreshJobRecord(jobId, names.length, "test", now);
  const rows = names.map((name) => ({ key: authorKey(name), name }));
  await env.DB.batch([...createJobStatements(env.DB, record, rows), markRefreshJobStatement(env.DB, jobId)]);
  const messages = rows.map((r) => ({
    v: 1 as const,
    jobId,
    authorKey: r.key,
    authorName: r.name,
    depth: 0,
    maxDepth: 0,
    gen: 0,
  }));
  await runSteps(env.DB, [markQueued(env.DB, messages, now)]);
  return messages;
}

/** Runs one consumer batch with every KV put recorded (key → value). */
async function runRecordingPuts(messages: WarmMessage[], config = loadConfig(env)) {
  const puts = new Map<string, unknown>();
  const kv = {
    get: env.CACHE.get.bind(env.CACHE),
    list: env.CACHE.list.bind(env.CACHE),
    delete: env.CACHE.delete.bind(env.CACHE),
    put: (key: string, value: string, options?: KVNamespacePutOptions) => {
      puts.set(key, JSON.parse(value));
      return env.CACHE.put(key, value, options);
    },
  } as unknown as KVNamespace;
  const batch = createMessageBatch(
    QUEUE,
    messages.map((m) => queueMessage(m)),
  );
  const ctx = createExecutionContext();
  await handleWarmBatch(batch, trackingEnv(), warmDeps({ cache: createCache(kv), config }));
  return { puts, result: await getQueueResult(batch, ctx) };
}

describe("scheduled refresh: selection", () => {
  beforeEach(resetAll);

  it("selects what expires within the horizon and was asked for recently, soonest first, up to the bound", async () => {
    const now = Date.now();
    await cachedItem("soon", now + 2 * HOUR, now - HOUR);
    await cachedItem("expired", now - HOUR, now - 2 * HOUR);
    await cachedItem("later", now + 10 * HOUR, now - HOUR);
    await cachedItem("forgotten", now + HOUR, now - 40 * 24 * HOUR);
    await cachedItem("isbn:9780140328721", now + 3 * HOUR, now - HOUR, "isbn");
    const select = (limit: number) =>
      listExpiringItems(env.DB, { until: now + 6 * HOUR, requestedSince: now - 30 * 24 * HOUR, limit });
    expect((await select(10)).map((i) => i.item_key)).toEqual(["expired", "soon", "isbn:9780140328721"]);
    expect((await select(2)).map((i) => i.item_key)).toEqual(["expired", "soon"]);
  });

  it("bounds a run by the quotas: skipped when spent or under the reserve, shrunk to the spare requests", () => {
    const config = loadConfig({ ...env, REFRESH_MAX_ITEMS: "500", REFRESH_QUOTA_RESERVE: "0.2" });
    const ol = { used: 10, limit: null, exhausted: false };
    const google = (used: number, exhausted = false) => ({ used, limit: 1000, exhausted });
    expect(refreshBound(config, { openlibrary: ol, googlebooks: google(100) })).toEqual({
      items: 500,
      reason: null,
    });
    expect(refreshBound(config, { openlibrary: ol, googlebooks: google(600) })).toMatchObject({ items: 200 });
    expect(refreshBound(config, { openlibrary: ol, googlebooks: google(800) }).items).toBe(0);
    expect(refreshBound(config, { openlibrary: ol, googlebooks: google(10, true) })).toEqual({
      items: 0,
      reason: "googlebooks quota spent",
    });
    expect(refreshBound(config, null).items).toBe(0);
    // Google switched off: its quota does not hold the refresh back.
    const noGoogle = loadConfig({ ...env, GOOGLE_BOOKS_ENABLED: "false" });
    expect(refreshBound(noGoogle, { openlibrary: ol, googlebooks: google(10, true) }).items).toBe(500);
  });

  it("creates nothing when Google's quota is spent", async () => {
    const now = Date.now();
    await cachedItem("soon", now + 2 * HOUR, now - HOUR);
    // Provider objects of its own (they outlive tests), with a limit of 1, used up.
    const config = loadConfig({ ...env, GOOGLE_BOOKS_DAILY_QUOTA: "1" });
    const namespace = freshNamespace();
    await durableRateLimiter(namespace, config).acquire("googlebooks");
    const run = await runScheduledRefresh({ ...env, RATE_LIMITER: namespace }, config, now);
    expect(run).toMatchObject({ jobId: null, selected: 0, reason: "googlebooks quota spent" });
    const jobs = await env.DB.prepare("SELECT COUNT(*) AS n FROM jobs").first<{ n: number }>();
    expect(jobs?.n).toBe(0);
  });
});

describe("scheduled refresh: the cron's job", () => {
  beforeEach(resetAll);

  it("the refresh cron creates a low-priority refresh job of what expires, listed in GET /api/jobs", async () => {
    const now = Date.now();
    const names = ["Cron Writer One", "Cron Writer Two", "Cron Writer Three"];
    for (const [i, name] of names.entries()) {
      await env.DB.prepare(
        `INSERT INTO cached_items (item_key, kind, name, written_at, expires_at, requested_at)
         VALUES (?1, 'author', ?2, ?3, ?4, ?3)`,
      )
        .bind(authorKey(name), name, now - 20 * HOUR, now + (i + 1) * HOUR)
        .run();
    }
    await cachedItem("not yet", now + 20 * HOUR, now - HOUR);
    const introspector = await introspectWorkflow(env.JOB_WORKFLOW);
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ cron: REFRESH_CRON }), trackingEnv(), ctx);
    await waitOnExecutionContext(ctx);
    const job = await env.DB.prepare("SELECT * FROM jobs").first<{
      id: string;
      kind: string;
      priority: string;
    }>();
    expect(job).toMatchObject({ kind: "refresh", priority: "low" });
    if (!job) return;
    trackJob(job.id);
    // Its id is a UUIDv8 (an upload's is v4): the routes take it like any job id.
    expect(isRefreshJob(job.id)).toBe(true);
    expect(isRefreshJob(crypto.randomUUID())).toBe(false);
    expect(
      (await call(`/api/jobs/${job.id}`, { headers: { Authorization: `Bearer ${TOKEN}` } })).status,
    ).toBe(200);
    const { results } = await env.DB.prepare(
      "SELECT author_key FROM tasks WHERE job_id = ?1 ORDER BY author_key",
    )
      .bind(job.id)
      .all<{ author_key: string }>();
    expect(results.map((r) => r.author_key)).toEqual(names.map(authorKey).sort());
    const list = (await (
      await call("/api/jobs", { headers: { Authorization: `Bearer ${TOKEN}` } })
    ).json()) as { jobs: { jobId: string; kind: string; priority: string }[] };
    expect(list.jobs).toEqual([expect.objectContaining({ jobId: job.id, kind: "refresh", priority: "low" })]);
    await drainQueues();
    // The refresh job runs the same lifecycle as an upload: ingest (its input is the selection) → publish.
    const [instance] = await introspector.get();
    try {
      await instance?.waitForStatus("complete");
      expect(await instance?.getOutput()).toEqual({ jobId: job.id, stage: "publish", outcome: "SUCCESS" });
    } finally {
      await introspector.dispose();
    }
    expect(await taskCounts(job.id)).toEqual({ done: 3 });
    expect((await jobRow(job.id))?.status).toBe("completed");
    // Once it is done, the refreshed lists are a day away: the next run finds nothing to do.
    const again = await runScheduledRefresh(env, loadConfig(env), Date.now());
    expect(again).toMatchObject({ jobId: null, reason: "nothing expires within the horizon" });
  });

  it("is bounded per run by REFRESH_MAX_ITEMS", async () => {
    const now = Date.now();
    for (let i = 0; i < 5; i++) await cachedItem(`Bounded Writer ${i}`, now + (i + 1) * HOUR, now - HOUR);
    const config = loadConfig({ ...env, REFRESH_MAX_ITEMS: "2" });
    const introspector = await introspectWorkflow(env.JOB_WORKFLOW);
    const run = await runScheduledRefresh(trackingEnv(), config, now);
    expect(run).toMatchObject({ selected: 2, bound: 2 });
    if (run.jobId) trackJob(run.jobId);
    expect((await jobRow(run.jobId ?? ""))?.root_tasks).toBe(2);
    // A second run while it is open creates nothing (it would select the same items).
    expect(await runScheduledRefresh(env, config, now)).toMatchObject({ jobId: null, selected: 0 });
    await drainQueues();
    const [instance] = await introspector.get();
    try {
      await instance?.waitForStatus("complete");
    } finally {
      await introspector.dispose();
    }
  });
});

describe("scheduled refresh: the diff", () => {
  beforeEach(resetAll);

  it("rewrites only the works whose merged record changed, records lastRefreshedAt, bypasses the marker", async () => {
    const name = partlyEditedAuthor();
    const { messages } = await seedJob([name], 0);
    const warm = await runRecordingPuts(messages);
    expect(warm.result.explicitAcks).toHaveLength(1);
    const before = (await env.CACHE.get<AuthorWorksEntry>(cacheKeys.authorWorks(name), "json"))?.works ?? [];
    const item = await env.DB.prepare("SELECT * FROM cached_items WHERE item_key = ?1")
      .bind(authorKey(name))
      .first<{ expires_at: number; written_at: number; refreshed_at: number | null }>();
    expect(item?.expires_at).toBe((item?.written_at ?? 0) + 24 * HOUR);
    expect(item?.refreshed_at).toBeNull();

    upstream.configure({ editedWorkFraction: 0.5 });
    const refresh = await seedRefreshJob([name]);
    const { puts, result } = await runRecordingPuts(refresh);
    expect(result.explicitAcks).toHaveLength(1);
    const refreshJob = refresh[0]?.jobId ?? "";
    // Not skipped on the fresh marker the warm just wrote: the task is done, with its works.
    expect(await taskCounts(refreshJob)).toEqual({ done: 1 });

    const after = (await env.CACHE.get<AuthorWorksEntry>(cacheKeys.authorWorks(name), "json"))?.works ?? [];
    const oldById = new Map(before.map((w) => [w.id, w]));
    const changed = after.filter((w) => workHash(w) !== workHash(oldById.get(w.id) as Work));
    const unchanged = after.filter((w) => workHash(w) === workHash(oldById.get(w.id) as Work));
    expect(changed.length).toBeGreaterThan(0);
    expect(unchanged.length).toBeGreaterThan(0);
    for (const w of changed.filter((w) => w.isbn13))
      expect(puts.get(cacheKeys.bookByIsbn(w.isbn13 as string))).toEqual(w);
    for (const w of unchanged.filter((w) => w.isbn13))
      expect(puts.has(cacheKeys.bookByIsbn(w.isbn13 as string))).toBe(false);
    for (const w of unchanged)
      expect(puts.has(cacheKeys.bookByTitle(w.title, w.authors[0] ?? name))).toBe(false);
    // The list (the entry that expires) and the marker are written: the list carries the new records.
    expect(puts.has(cacheKeys.authorWorks(name))).toBe(true);
    const marker = puts.get(cacheKeys.processedMarker(name)) as ProcessedMarker;
    expect(marker.jobId).toBe(refreshJob);
    expect(Date.parse(marker.lastRefreshedAt ?? "")).toBeGreaterThan(Date.now() - 60_000);
    const perWork = changed.reduce((n, w) => n + (w.isbn13 ? 2 : 1), 0);
    expect(puts.size).toBe(perWork + 2);
    // The item's refresh is recorded; its request time is the upload's.
    const refreshed = await env.DB.prepare("SELECT * FROM cached_items WHERE item_key = ?1")
      .bind(authorKey(name))
      .first<{ requested_at: number; refreshed_at: number | null; written_at: number }>();
    expect(refreshed?.refreshed_at).toBe(refreshed?.written_at);
    expect(refreshed?.requested_at).toBe(item?.written_at);
  });

  it("an upload still skips an author on its fresh marker; a second refresh of an unchanged catalogue writes no work", async () => {
    const name = partlyEditedAuthor();
    const { messages } = await seedJob([name], 0);
    await runRecordingPuts(messages);
    const upload = await seedJob([name], 0);
    await runRecordingPuts(upload.messages);
    expect(await taskCounts(upload.jobId)).toEqual({ skipped: 1 });
    const { puts } = await runRecordingPuts(await seedRefreshJob([name]));
    expect([...puts.keys()].sort()).toEqual(
      [cacheKeys.authorWorks(name), cacheKeys.processedMarker(name)].sort(),
    );
  });
});
