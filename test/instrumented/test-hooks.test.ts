import {
  createExecutionContext,
  createMessageBatch,
  getQueueResult,
  waitOnExecutionContext,
} from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { cacheKeys } from "../../src/cache/keys";
import { loadConfig } from "../../src/config";
import worker from "../../src/index";
import { runIngest } from "../../src/jobs/ingest-stage";
import { createProviderBreakers } from "../../src/sources";
import { durableRateLimiter } from "../../src/sources/rate-limit";
import { handleWarmBatch } from "../../src/warm/consumer";
import { jobRow, resetAll } from "../support/db";
import { callAsAdmin, TOKEN } from "../support/http";
import { counters, modes, resetCounters } from "../support/instrumented/counters";
import instrumented from "../support/instrumented/entry";
import { instrumentEnv } from "../support/instrumented/instrument";
import { handleWarmBatchNaively } from "../support/instrumented/naive";
import { queueMessage, seedJob, warmDeps } from "../support/jobs";
import { upstream } from "../support/upstream";
import { hasCoAuthors } from "../support/upstream/catalogue.ts";

/**
 * Bindings whose job Workflow is its ingest stage alone, run on counted bindings as the job is created: the
 * upload's tasks are written and its first window admitted there (counted here), and nothing else runs.
 */
function ingestOnly(): { bindings: Env; ingested: () => Promise<unknown> } {
  const runs: Promise<unknown>[] = [];
  const bindings = {
    ...env,
    JOB_WORKFLOW: {
      create: async ({ id }: { id: string }) => {
        runs.push(
          jobRow(id).then((job) => job && runIngest(instrumentEnv(bindings, "api"), job, loadConfig(env))),
        );
        return {};
      },
    },
  } as unknown as Env;
  return { bindings, ingested: () => Promise.all(runs) };
}

async function hooked(path: string, init: RequestInit = {}, bindings: Env = env) {
  const ctx = createExecutionContext();
  const request = new Request(`http://kindling.test${path}`, init) as Request<
    unknown,
    IncomingRequestCfProperties
  >;
  const response = await instrumented.fetch(request, bindings, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

describe("test hooks", () => {
  beforeEach(async () => {
    await resetAll();
    resetCounters();
    Object.assign(modes, {
      producer: "kindling",
      consumer: "kindling",
      crashRate: 0,
      duplicateDelivery: false,
    });
  });

  it("exist only in the instrumented entry, never in the production one", async () => {
    const off = await worker.fetch(
      new Request("http://kindling.test/__test/counters") as Request<unknown, IncomingRequestCfProperties>,
      env,
      createExecutionContext(),
    );
    expect(off.status).toBe(404);
    expect((await hooked("/__test/counters")).status).toBe(200);
  });

  it("count billable operations: the 202 sends nothing, ingest admits a small upload in one sendBatch; naive mode sends one per author before its 202", async () => {
    const csv = "Title,Author\nA,Ada Writer\nB,Bea Writer\nC,Cy Writer\n";
    const { bindings, ingested } = ingestOnly();
    const upload = (query = "?maxDepth=0") =>
      hooked(
        `/api/jobs${query}`,
        {
          method: "POST",
          headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "text/csv" },
          body: csv,
        },
        bindings,
      );
    const response = await upload();
    expect(response.status).toBe(202);
    const { jobId } = (await response.json()) as { jobId: string };
    await ingested();
    expect(counters).toMatchObject({ queueSendBatchCalls: 1, queueSendCalls: 0, queueMessagesSent: 3 });
    expect(counters.d1Batches).toBeGreaterThanOrEqual(2);
    expect(counters.d1RowsWritten).toBeGreaterThanOrEqual(4);
    expect(await jobRow(jobId)).toMatchObject({ total_tasks: 3 });

    resetCounters();
    const switched = await hooked("/__test/modes", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ producer: "naive" }),
    });
    expect(await switched.json()).toMatchObject({ producer: "naive" });
    expect((await upload()).status).toBe(202);
    // Ingest's admission ran while the naive producer waited for the tasks (naive mode turns its sendBatch
    // into one send per message too), then that producer sent one message per author, as the original
    // design did: 3 + 3 sends.
    expect(counters).toMatchObject({ queueSendBatchCalls: 0, queueSendCalls: 6, queueMessagesSent: 6 });
    expect(
      (
        await hooked("/__test/modes", {
          method: "POST",
          body: '{"crashRate": 2}',
          headers: { "Content-Type": "application/json" },
        })
      ).status,
    ).toBe(400);
  });

  it("seed a job with N tasks spread over states and depths", async () => {
    const response = await hooked("/__test/seed-job", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ tasks: 1000, maxDepth: 2 }),
    });
    expect(response.status).toBe(201);
    const { jobId } = (await response.json()) as { jobId: string };
    const progress = (await (await callAsAdmin(`/api/jobs/${jobId}`)).json()) as {
      counts: Record<string, number>;
      byDepth: unknown[];
    };
    expect(progress.counts).toMatchObject({
      total: 1000,
      pending: 100,
      queued: 100,
      running: 100,
      skipped: 100,
      failed: 100,
      done: 500,
    });
    expect(progress.byDepth).toHaveLength(3);
    expect(await jobRow(jobId)).toMatchObject({ done_count: 500, failed_count: 100, skipped_count: 100 });
  });

  it("count rate-limiter calls without breaking the Durable Object's RPC", async () => {
    const instrumented = instrumentEnv(env);
    const config = loadConfig({ ...env, OPENLIBRARY_RATE_PER_SECOND: "1000" });
    const limiter = durableRateLimiter(instrumented.RATE_LIMITER, config, { sleep: async () => {} });
    await limiter.acquire("openlibrary");
    await limiter.pause("openlibrary", 0);
    expect(counters.rateLimiterCalls).toBe(2);
  });

  it("duplicate delivery sends every message twice", async () => {
    modes.duplicateDelivery = true;
    const { bindings, ingested } = ingestOnly();
    const response = await hooked(
      "/api/jobs?maxDepth=0",
      {
        method: "POST",
        headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "text/csv" },
        body: "Title,Author\nA,Ada Writer\n",
      },
      bindings,
    );
    expect(response.status).toBe(202);
    await ingested();
    expect(counters.queueMessagesSent).toBe(2);
  });
});

describe("the naive consumer (measured against, never deployed)", () => {
  beforeEach(resetAll);

  it("reaches the same end state as the real one: task done, works cached, marker written, job complete", async () => {
    const author = "Peter Frankopan";
    const { jobId, messages } = await seedJob([author], 0);
    const batch = createMessageBatch("author-warming-queue", [queueMessage(messages[0])]);
    const ctx = createExecutionContext();
    await handleWarmBatchNaively(batch, env, {
      config: warmDeps().config,
      fetch: upstream.fetch,
      breakers: createProviderBreakers(),
    });
    const result = await getQueueResult(batch, ctx);
    expect(result.explicitAcks).toHaveLength(1);
    const job = await jobRow(jobId);
    expect(job).toMatchObject({ status: "completed", done_count: 1 });
    expect(job?.works_cached).toBeGreaterThan(0);
    expect(await env.CACHE.get(cacheKeys.processedMarker(author))).not.toBeNull();
    expect(await env.CACHE.get(cacheKeys.authorWorks(author))).not.toBeNull();
  });

  it("fans out to the same co-authors as the real one", async () => {
    let author = "";
    for (let i = 0; !author; i++) if (hasCoAuthors(`Social Writer ${i}`)) author = `Social Writer ${i}`;
    const deps = { config: warmDeps().config, fetch: upstream.fetch, breakers: createProviderBreakers() };
    const childrenAfter = async (consumer: "naive" | "real") => {
      await resetAll();
      const { jobId, messages } = await seedJob([author], 1);
      const batch = createMessageBatch("author-warming-queue", [queueMessage(messages[0])]);
      if (consumer === "naive") await handleWarmBatchNaively(batch, env, deps);
      else await handleWarmBatch(batch, env, warmDeps());
      const { results } = await env.DB.prepare(
        "SELECT author_key FROM tasks WHERE job_id = ?1 AND depth = 1 ORDER BY author_key",
      )
        .bind(jobId)
        .all<{ author_key: string }>();
      return results.map((r) => r.author_key);
    };
    const naive = await childrenAfter("naive");
    expect(naive.length).toBeGreaterThan(0);
    expect(naive).toEqual(await childrenAfter("real"));
  });
});
