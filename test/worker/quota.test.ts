import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config";
import { QuotaExhaustedError } from "../../src/errors";
import { createProviderBreakers } from "../../src/sources";
import { durableRateLimiter, quotaReport } from "../../src/sources/rate-limit";
import type { ProviderRateLimiter } from "../../src/sources/rate-limiter-do";
import { handleWarmBatch } from "../../src/warm/consumer";
import { resetAll, taskCounts } from "../support/db";
import { trackingEnv } from "../support/drain";
import { call, TOKEN } from "../support/http";
import { queueMessage, seedJob, warmDeps } from "../support/jobs";
import { upstream } from "../support/upstream";
import { EXPORT_BOOKS } from "../support/upstream/export-books.ts";
import { openLibraryKnowsIsbn } from "../support/upstream/export-catalogue.ts";

/** Each test its own provider objects (the namespace outlives tests), named by provider and a run id. */
function freshNamespace(): DurableObjectNamespace<ProviderRateLimiter> {
  const run = crypto.randomUUID();
  const namespace = env.RATE_LIMITER;
  return {
    idFromName: (name: string) => namespace.idFromName(`${name}@${run}`),
    get: (id: DurableObjectId) => namespace.get(id),
  } as unknown as DurableObjectNamespace<ProviderRateLimiter>;
}

const unknownToOpenLibrary = EXPORT_BOOKS.filter(([isbn]) => !openLibraryKnowsIsbn(isbn)).map(([i]) => i);

describe("daily quotas in the provider Durable Object", () => {
  beforeEach(resetAll);

  it("grants Google Books its daily quota, then refuses until the Pacific midnight, and reports it", async () => {
    const config = loadConfig({ ...env, GOOGLE_BOOKS_DAILY_QUOTA: "2", GOOGLE_BOOKS_RATE_PER_SECOND: "0" });
    const namespace = freshNamespace();
    const limiter = durableRateLimiter(namespace, config);
    await limiter.acquire("googlebooks");
    await limiter.acquire("googlebooks");
    const refused = await limiter.acquire("googlebooks").catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(QuotaExhaustedError);
    // A second client (another isolate) reads the same count: it lives in the object's storage.
    const report = await quotaReport(namespace, config);
    expect(report.googlebooks).toMatchObject({ used: 2, limit: 2, exhausted: true });
    const reset = Date.parse(report.googlebooks.resetAt);
    expect(reset).toBeGreaterThan(Date.now());
    expect(reset - Date.now()).toBeLessThanOrEqual(24 * 3600_000);
    const hourInLosAngeles = new Intl.DateTimeFormat("en-US", {
      timeZone: "America/Los_Angeles",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
    }).format(new Date(reset));
    expect(hourInLosAngeles).toBe("00:00");
    expect(report.openlibrary).toMatchObject({ limit: null, exhausted: false });
  });

  it("skips Google once it answers its daily-limit 429: items finish with Open Library, not retried", async () => {
    upstream.configure({ googleDailyQuota: 1 });
    const config = loadConfig({
      ...env,
      GOOGLE_BOOKS_RATE_PER_SECOND: "0",
      OPENLIBRARY_RATE_PER_SECOND: "0",
    });
    const namespace = freshNamespace();
    const deps = warmDeps({
      config,
      breakers: createProviderBreakers(),
      rateLimiter: durableRateLimiter(namespace, config),
    });
    const isbns = unknownToOpenLibrary.slice(0, 4);
    const { jobId, messages } = await seedJob([], 0, isbns);
    const batch = createMessageBatch(
      "author-warming-queue",
      messages.map((m) => queueMessage(m)),
    );
    await handleWarmBatch(batch, trackingEnv(), deps);
    const result = await getQueueResult(batch, createExecutionContext());
    expect(result.retryMessages).toHaveLength(0);
    expect(await taskCounts(jobId)).toEqual({ done: 4 });
    const rows = await env.DB.prepare("SELECT sources, works_count FROM tasks WHERE job_id = ?1")
      .bind(jobId)
      .all<{ sources: string; works_count: number }>();
    const googleCodes = rows.results.map(
      (r) =>
        (JSON.parse(r.sources) as { source: string; error?: { code: string } }[]).find(
          (s) => s.source === "googlebooks",
        )?.error?.code ?? "ok",
    );
    // One ISBN was answered before the quota ran out; the others record the skipped source.
    expect(googleCodes.filter((c) => c === "ok")).toHaveLength(1);
    expect(googleCodes.filter((c) => c === "quota_exhausted")).toHaveLength(3);
    expect((await quotaReport(namespace, config)).googlebooks.exhausted).toBe(true);
    // Another job's ISBNs: Google is not asked at all until the reset.
    const before = upstream.stats().byPath["/books/v1/volumes"] ?? 0;
    const second = await seedJob([], 0, unknownToOpenLibrary.slice(4, 6));
    await handleWarmBatch(
      createMessageBatch(
        "author-warming-queue",
        second.messages.map((m) => queueMessage(m)),
      ),
      trackingEnv(),
      deps,
    );
    expect(upstream.stats().byPath["/books/v1/volumes"] ?? 0).toBe(before);
    expect(await taskCounts(second.jobId)).toEqual({ done: 2 });
  });

  it("shows quotas on /health and on a job's progress", async () => {
    const health = (await (await call("/health")).json()) as { quotas: Record<string, { resetAt: string }> };
    expect(health.quotas.googlebooks?.resetAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    const { jobId } = await seedJob(["Quota Reader"], 0);
    const progress = (await (
      await call(`/api/jobs/${jobId}`, { headers: { Authorization: `Bearer ${TOKEN}` } })
    ).json()) as { quotas: Record<string, { limit: number | null }> };
    expect(progress.quotas.googlebooks?.limit).toBe(1000);
    await env.DB.prepare("UPDATE tasks SET status = 'done' WHERE job_id = ?1").bind(jobId).run();
  });
});
