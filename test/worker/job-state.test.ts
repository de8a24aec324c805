import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { handleWarmBatch } from "../../src/warm/consumer";
import { jobRow, resetAll, taskCounts } from "../support/db";
import { counters, resetCounters } from "../support/instrumented/counters";
import { instrumentEnv } from "../support/instrumented/instrument";
import { queueMessage, seedJob, warmDeps } from "../support/jobs";
import { upstream } from "../support/upstream";

const QUEUE = "author-warming-queue";

async function deliver(messages: unknown[]) {
  const batch = createMessageBatch(
    QUEUE,
    messages.map((m) => queueMessage(m)),
  );
  await handleWarmBatch(batch, instrumentEnv(env), warmDeps());
  return getQueueResult(batch, createExecutionContext());
}

describe("the consumer's job-state check (src/warm/consumer/job-state.ts)", () => {
  beforeEach(async () => {
    await resetAll();
    resetCounters();
  });

  it("parks a paused job's messages: acked, no upstream request, tasks left open and uncounted", async () => {
    const { jobId, messages } = await seedJob(["Peter Frankopan", "Yuval Noah Harari"], 0);
    await env.DB.prepare("UPDATE jobs SET status = 'paused' WHERE id = ?1").bind(jobId).run();
    const result = await deliver(messages);
    expect(result.explicitAcks).toHaveLength(2);
    expect(result.retryMessages).toHaveLength(0);
    expect(upstream.stats().total).toBe(0);
    expect(await taskCounts(jobId)).toEqual({ queued: 2 });
    expect(await jobRow(jobId)).toMatchObject({ status: "paused", done_count: 0, failed_count: 0 });
  });

  it("closes a cancelled job's late tasks as cancelled, counted exactly once, without warming them", async () => {
    const { jobId, messages } = await seedJob(["Peter Frankopan", "Yuval Noah Harari"], 0);
    await env.DB.prepare("UPDATE jobs SET status = 'cancelled' WHERE id = ?1").bind(jobId).run();
    await deliver(messages);
    // A duplicate copy finds the task closed: nothing moves.
    await deliver(messages);
    expect(upstream.stats().total).toBe(0);
    expect(await taskCounts(jobId)).toEqual({ cancelled: 2 });
    expect((await jobRow(jobId))?.cancelled_count).toBe(2);
  });

  it("a running job's state is read once a second per isolate, not once per batch", async () => {
    const { jobId, messages } = await seedJob(["Peter Frankopan", "Yuval Noah Harari"], 0);
    const [first, second] = messages;
    await deliver([first]);
    const afterFirst = counters.d1Batches;
    await deliver([second]);
    // The second batch pays only its own write batch: the job's state came from the isolate's copy.
    expect(counters.d1Batches - afterFirst).toBe(1);
    expect(await taskCounts(jobId)).toEqual({ done: 2 });
  });
});
