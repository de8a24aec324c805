import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config";
import type { RateLimiter } from "../../src/sources";
import { createProviderBreakers } from "../../src/sources";
import type { ProviderGrant, Requester } from "../../src/sources/grant-scheduler";
import { quotaFor } from "../../src/sources/rate-limit";
import { slotSpacingMs } from "../../src/sources/slots";
import type { SourceName } from "../../src/sources/types";
import { handleWarmBatch } from "../../src/warm/consumer";
import { resetAll, taskCounts } from "../support/db";
import { trackingEnv } from "../support/drain";
import { queueMessage, seedJob, warmDeps } from "../support/jobs";

/** A provider object of its own (the namespace outlives tests), so no earlier schedule or pause leaks in. */
function freshLimiter() {
  return env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(`openlibrary@${crypto.randomUUID()}`));
}

const RATE = 5;
const quota = quotaFor(loadConfig(env), "openlibrary");

/** Asks the real Durable Object for a slot; records the order in which the answers come back. */
function asker(stub: ReturnType<typeof freshLimiter>, order: string[]) {
  return async (who: Requester, label = who.jobId): Promise<ProviderGrant> => {
    const grant = await stub.acquire(RATE, 20_000, quota, who);
    order.push(label);
    return grant;
  };
}

describe("priority at the provider's Durable Object (src/sources/rate-limiter-do.ts)", () => {
  beforeEach(resetAll);

  it("a high request waiting behind many normal ones is granted first, and the pace holds", async () => {
    const stub = freshLimiter();
    const order: string[] = [];
    const ask = asker(stub, order);
    const normals = Array.from({ length: 12 }, (_, i) =>
      ask({ jobId: "big", priority: "normal" }, `big-${i}`),
    );
    // Let the big job's requests queue up inside the object (one granted, the rest waiting).
    await new Promise((resolve) => setTimeout(resolve, 150));
    const askedAt = Date.now();
    const high = await ask({ jobId: "small", priority: "high" });
    const all = [...(await Promise.all(normals)), high];
    expect(all.every((g) => g.granted)).toBe(true);
    // Served at the next slot or the one after (one may already have been decided, 50 ms ahead), not 12th.
    expect(high.slotAt - askedAt).toBeLessThanOrEqual(2 * slotSpacingMs(RATE) + 100);
    expect(order.indexOf("small")).toBeLessThanOrEqual(3);
    expect(order.slice(order.indexOf("small") + 1).length).toBeGreaterThanOrEqual(8);
    // Never more than R slots in any second: consecutive slots ms apart as slotSpacingMs(R) says.
    const slots = all.map((g) => g.slotAt).sort((a, b) => a - b);
    for (let i = 1; i < slots.length; i++)
      expect((slots[i] as number) - (slots[i - 1] as number)).toBeGreaterThanOrEqual(slotSpacingMs(RATE));
  });

  it("two jobs of one priority take turns, whichever queued first", async () => {
    const stub = freshLimiter();
    const order: string[] = [];
    const ask = asker(stub, order);
    const a = Array.from({ length: 8 }, () => ask({ jobId: "a", priority: "normal" }));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const b = Array.from({ length: 8 }, () => ask({ jobId: "b", priority: "normal" }));
    await Promise.all([...a, ...b]);
    // a's first one or two went before b asked; from b's first grant on they alternate while both wait.
    const contested = order.slice(order.indexOf("b"), order.indexOf("b") + 12);
    for (let i = 1; i < contested.length; i++) expect(contested[i]).not.toBe(contested[i - 1]);
  });

  it("a request that cannot be served within its max wait is answered not granted, and books nothing", async () => {
    const stub = freshLimiter();
    await stub.pause(10_000);
    const refused = await stub.acquire(RATE, 2_000, quota, { jobId: "j", priority: "high" });
    expect(refused).toMatchObject({ granted: false });
    expect(refused.waitMs).toBeGreaterThan(2_000);
  });
});

describe("the consumer says who asks (job-state → grouped request frame → rate limiter)", () => {
  beforeEach(resetAll);

  it("a group mixing jobs asks with its highest-priority member's job; a lone job with its own", async () => {
    const high = await seedJob(["Peter Frankopan"], 0);
    const normal = await seedJob(["Yuval Noah Harari", "Mary Beard"], 0);
    await env.DB.prepare("UPDATE jobs SET priority = 'high' WHERE id = ?1").bind(high.jobId).run();
    const asked: { source: SourceName; requester: Requester | undefined }[] = [];
    const rateLimiter: RateLimiter = {
      acquire: async (source, requester) => {
        asked.push({ source, requester });
      },
      pause: async () => {},
    };
    const config = loadConfig({ ...env, GOOGLE_BOOKS_ENABLED: "false" });
    const deps = warmDeps({ config, breakers: createProviderBreakers(), rateLimiter });
    // One batch, first deliveries: the three authors share one grouped Open Library request.
    const batch = createMessageBatch(
      "author-warming-queue",
      [...normal.messages, ...high.messages].map((m) => queueMessage(m)),
    );
    await handleWarmBatch(batch, trackingEnv(), deps);
    await getQueueResult(batch, createExecutionContext());
    expect(await taskCounts(high.jobId)).toEqual({ done: 1 });
    expect(asked.length).toBeGreaterThan(0);
    for (const a of asked) expect(a.requester).toEqual({ jobId: high.jobId, priority: "high" });

    // The normal job on its own (a retry's smaller group, say) asks as itself, at normal.
    const again = await seedJob(["Hilary Mantel"], 0);
    asked.length = 0;
    const alone = createMessageBatch(
      "author-warming-queue",
      again.messages.map((m) => queueMessage(m)),
    );
    await handleWarmBatch(alone, trackingEnv(), deps);
    expect(asked.map((a) => a.requester)).toContainEqual({ jobId: again.jobId, priority: "normal" });
    expect(asked.every((a) => a.requester?.jobId === again.jobId)).toBe(true);
  });
});
