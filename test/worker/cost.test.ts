import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { PRICE_TABLE } from "../../src/config";
import { jobCounters } from "../../src/db/usage";
import { handleWarmBatch } from "../../src/warm/consumer";
import { apportion } from "../../src/warm/usage";
import { resetAll } from "../support/db";
import { trackingEnv } from "../support/drain";
import { callAsAdmin } from "../support/http";
import { type QueueMessageInput, queueMessage, seedJob, warmDeps } from "../support/jobs";
import { upstream } from "../support/upstream";
import { hasCoAuthors, worksForAuthor } from "../support/upstream/catalogue.ts";

const QUEUE = "author-warming-queue";
const solo = (prefix: string, n: number): string[] => {
  const names: string[] = [];
  for (let i = 0; names.length < n; i++) {
    const name = `${prefix} ${i}`;
    if (!hasCoAuthors(name) && worksForAuthor(name).length > 0) names.push(name);
  }
  return names;
};

async function runBatch(messages: QueueMessageInput[]) {
  const batch = createMessageBatch(QUEUE, messages);
  await handleWarmBatch(batch, trackingEnv(), warmDeps());
  return getQueueResult(batch, createExecutionContext());
}

async function upstreamMinutes() {
  const { results } = await env.DB.prepare(
    "SELECT provider, SUM(requests) AS requests, SUM(errors) AS errors, SUM(throttled) AS throttled FROM upstream_minutes GROUP BY provider",
  ).all<{ provider: string; requests: number; errors: number; throttled: number }>();
  return results;
}

const sum = (rows: { requests: number }[]) => rows.reduce((n, r) => n + r.requests, 0);

describe("per-invocation counters: upstream per minute and cost per job", () => {
  beforeEach(resetAll);

  it("counts every upstream try per provider and each job's queue, KV and upstream operations in the batch", async () => {
    const a = await seedJob(solo("Cost Writer A", 3), 0);
    const b = await seedJob(solo("Cost Writer B", 1), 0);
    const result = await runBatch([...a.messages, ...b.messages].map((m) => queueMessage(m)));
    expect(result.explicitAcks).toHaveLength(4);

    const tries = upstream.stats().total;
    expect(tries).toBeGreaterThan(0);
    const minutes = await upstreamMinutes();
    expect(sum(minutes)).toBe(tries);
    expect(minutes.every((r) => r.errors === 0 && r.throttled === 0)).toBe(true);

    const ca = await jobCounters(env.DB, a.jobId);
    const cb = await jobCounters(env.DB, b.jobId);
    expect(ca).toMatchObject({
      invocations: 1,
      queueSent: 3,
      queueDelivered: 3,
      queueAcked: 3,
      queueRetried: 0,
    });
    expect(cb).toMatchObject({
      invocations: 1,
      queueSent: 1,
      queueDelivered: 1,
      queueAcked: 1,
      queueRetried: 0,
    });
    // Each job's upstream requests are its groups' tries; together they are every try the stand-in saw.
    const requests = (c: typeof ca) => c.openlibraryRequests + c.googlebooksRequests;
    expect(requests(ca) + requests(cb)).toBe(tries);
    expect(requests(ca)).toBeGreaterThan(0);
    // Marker reads (one per message) and the works written are apportioned 3:1 by messages.
    expect(ca.kvReads).toBeGreaterThanOrEqual(3);
    expect(ca.kvWrites).toBeGreaterThan(cb.kvWrites);
    // The batch's own D1 rows ride with the isolate's next batch.
    expect(ca.d1RowsWritten).toBe(0);
    const c = await seedJob(solo("Cost Writer C", 1), 0);
    await runBatch(c.messages.map((m) => queueMessage(m)));
    const after = await jobCounters(env.DB, a.jobId);
    expect(after.d1RowsWritten).toBeGreaterThan(0);
    expect(after.d1RowsRead).toBeGreaterThan(0);
    expect(after.invocations).toBe(1);
  });

  it("a batch of a large job reads rows for its own messages, not for every task of the job", async () => {
    // Before the counters' CROSS JOIN, a batch of 10 messages of a 1,000-task job read about 22,000 rows
    // (every open task of the job, per message list); now the rows read do not grow with the job.
    const big = await seedJob(solo("Rows Writer", 1_000), 0);
    await runBatch(big.messages.slice(0, 10).map((m) => queueMessage(m)));
    // The batch's own D1 rows ride with the isolate's next batch.
    const next = await seedJob(solo("Rows Next", 1), 0);
    await runBatch(next.messages.map((m) => queueMessage(m)));
    const counters = await jobCounters(env.DB, big.jobId);
    expect(counters.queueAcked).toBe(10);
    expect(counters.d1RowsRead).toBeGreaterThan(0);
    expect(counters.d1RowsRead).toBeLessThan(2_000);
  });

  it("counts 429s and errors per provider, and a retried delivery as retried, not acked", async () => {
    upstream.configure({ rate429: 1, retryAfterSeconds: 30 });
    const a = await seedJob(solo("Throttled Writer", 1), 0);
    const result = await runBatch(a.messages.map((m) => queueMessage(m, 2)));
    expect(result.retryMessages).toHaveLength(1);
    const throttled = upstream.stats().byStatus["429"] ?? 0;
    expect(throttled).toBeGreaterThan(0);
    const minutes = await upstreamMinutes();
    expect(minutes.reduce((n, r) => n + r.throttled, 0)).toBe(throttled);
    expect(minutes.reduce((n, r) => n + r.errors, 0)).toBe(throttled);
    expect(await jobCounters(env.DB, a.jobId)).toMatchObject({
      queueSent: 0,
      queueDelivered: 1,
      queueRetried: 1,
      queueAcked: 0,
    });
  });

  it("GET /api/jobs/:id reports the counters with a price estimate from the price table", async () => {
    const a = await seedJob(solo("Priced Writer", 2), 0);
    await runBatch(a.messages.map((m) => queueMessage(m)));
    const response = await callAsAdmin(`/api/jobs/${a.jobId}`);
    expect(response.status).toBe(200);
    const { cost } = (await response.json()) as {
      cost: {
        queueOperations: number;
        kvReads: number;
        kvWrites: number;
        d1RowsRead: number;
        d1RowsWritten: number;
        estimateUsd: Record<string, number>;
      };
    };
    expect(cost.queueOperations).toBe(2 + 2 + 2);
    const expected =
      (cost.queueOperations * PRICE_TABLE.queueOperationsPerMillion +
        cost.kvReads * PRICE_TABLE.kvReadsPerMillion +
        cost.kvWrites * PRICE_TABLE.kvWritesPerMillion +
        cost.d1RowsRead * PRICE_TABLE.d1RowsReadPerMillion +
        cost.d1RowsWritten * PRICE_TABLE.d1RowsWrittenPerMillion) /
      1_000_000;
    expect(cost.estimateUsd.total).toBeCloseTo(expected, 12);
    expect(cost.estimateUsd.total).toBeGreaterThan(0);
  });

  it("apportions a shared total by messages, exactly", () => {
    const shares = apportion(
      10,
      new Map([
        ["a", 3],
        ["b", 1],
        ["c", 0],
      ]),
    );
    expect(Object.fromEntries(shares)).toEqual({ a: 8, b: 2, c: 0 });
    expect(
      [
        ...apportion(
          7,
          new Map([
            ["a", 1],
            ["b", 1],
            ["c", 1],
          ]),
        ).values(),
      ].reduce((x, y) => x + y),
    ).toBe(7);
  });
});
