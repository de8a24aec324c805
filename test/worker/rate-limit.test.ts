import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config";
import { createProviderBreakers } from "../../src/sources";
import { durableRateLimiter, MAX_MISSED_SLOTS, quotaReport } from "../../src/sources/rate-limit";
import type { ProviderRateLimiter } from "../../src/sources/rate-limiter-do";
import { handleWarmBatch } from "../../src/warm/consumer";
import { resetAll, taskCounts } from "../support/db";
import { trackingEnv } from "../support/drain";
import { queueMessage, seedJob, warmDeps } from "../support/jobs";
import { upstream } from "../support/upstream";
import { worksForAuthor } from "../support/upstream/catalogue.ts";

/**
 * The global rate limit at a real rate (the other worker tests run with rates of 0): Open Library at 3/s
 * against a stand-in that answers 429 past 3 requests in a second, the consumer asking the real Durable
 * Object for slots.
 */
const RATE = 3;
// One author per request: these tests are about the pace of many requests, not about grouping them.
const config = loadConfig({
  ...env,
  OPENLIBRARY_RATE_PER_SECOND: String(RATE),
  GOOGLE_BOOKS_ENABLED: "false",
  OPENLIBRARY_AUTHORS_PER_REQUEST: "1",
});

/**
 * The rate limiter's Durable Object is shared by every test of the run (and keeps its schedule and any
 * pause): each test asks its own instance, named by provider and a fresh run id, so it starts unpaused.
 */
function freshLimiterNamespace(): DurableObjectNamespace<ProviderRateLimiter> {
  const run = crypto.randomUUID();
  const namespace = env.RATE_LIMITER;
  return {
    idFromName: (name: string) => namespace.idFromName(`${name}@${run}`),
    get: (id: DurableObjectId) => namespace.get(id),
  } as unknown as DurableObjectNamespace<ProviderRateLimiter>;
}

/** Authors the stand-in answers in one Open Library page each, so one author is one request. */
function onePageAuthors(count: number, prefix: string): string[] {
  const names: string[] = [];
  for (let i = 0; names.length < count; i++) {
    const n = worksForAuthor(`${prefix} ${i}`).length;
    if (n > 0 && n < 90) names.push(`${prefix} ${i}`);
  }
  return names;
}

/** The stand-in, with every request's arrival time recorded. */
function recordingFetch(arrivals: number[]): typeof fetch {
  return (input, init) => {
    arrivals.push(Date.now());
    return upstream.fetch(input, init);
  };
}

async function runBatch(messages: ReturnType<typeof queueMessage>[], deps: ReturnType<typeof warmDeps>) {
  const batch = createMessageBatch("author-warming-queue", messages);
  const ctx = createExecutionContext();
  await handleWarmBatch(batch, trackingEnv(), deps);
  return getQueueResult(batch, ctx);
}

describe("the global rate limit at 3 requests/s", () => {
  beforeEach(async () => {
    await resetAll();
    upstream.configure({ rateLimitPerSecond: RATE });
  });

  it("never lets more than 3 requests reach the provider in any sliding second, and none is refused", async () => {
    const authors = onePageAuthors(12, "Paced Writer");
    const { jobId, messages } = await seedJob(authors, 0);
    const arrivals: number[] = [];
    const deps = warmDeps({
      config,
      fetch: recordingFetch(arrivals),
      breakers: createProviderBreakers(),
      rateLimiter: durableRateLimiter(freshLimiterNamespace(), config),
    });
    const result = await runBatch(
      messages.map((m) => queueMessage(m)),
      deps,
    );
    expect(result.explicitAcks).toHaveLength(authors.length);
    expect(await taskCounts(jobId)).toEqual({ done: authors.length });
    expect(arrivals.length).toBeGreaterThanOrEqual(authors.length);
    arrivals.sort((a, b) => a - b);
    // Any R + 1 consecutive arrivals span at least a second: no window of 1 s holds more than R.
    const crowded = arrivals
      .slice(RATE)
      .map((t, i) => t - (arrivals[i] as number))
      .filter((span) => span < 1000);
    expect(crowded).toEqual([]);
    expect(upstream.stats().byStatus["429"] ?? 0).toBe(0);
    expect(upstream.stats().maxPerSecond).toBeLessThanOrEqual(RATE);
  });

  it.each([429, 503])(
    "a %i with Retry-After pauses the provider: no request reaches it before Retry-After has passed",
    async (status) => {
      const [first, second] = onePageAuthors(2, "Paused Writer");
      const { messages } = await seedJob([first as string, second as string], 0);
      const arrivals: number[] = [];
      let refusedAt = -1;
      // The first request is told to slow down for 3 s (past the 2 s a request waits out inline).
      const slowDown: typeof fetch = (input, init) => {
        arrivals.push(Date.now());
        if (refusedAt < 0) {
          refusedAt = Date.now();
          return Promise.resolve(
            new Response(JSON.stringify({ error: "slow down" }), {
              status,
              headers: { "content-type": "application/json", "retry-after": "3" },
            }),
          );
        }
        return upstream.fetch(input, init);
      };
      const deps = warmDeps({
        config,
        fetch: slowDown,
        breakers: createProviderBreakers(),
        rateLimiter: durableRateLimiter(freshLimiterNamespace(), config),
      });
      const refused = await runBatch([queueMessage(messages[0])], deps);
      expect(refused.retryMessages).toHaveLength(1);
      expect(arrivals).toHaveLength(1);

      // Another author, at once: its request waits until the pause is over.
      const next = await runBatch([queueMessage(messages[1])], deps);
      expect(next.explicitAcks).toHaveLength(1);
      expect(arrivals).toHaveLength(2);
      expect((arrivals[1] as number) - refusedAt).toBeGreaterThanOrEqual(2990);
    },
  );
});

describe("a slot the caller wakes too late for", () => {
  /** The namespace above, counting the slots asked for. */
  function countingNamespace() {
    const namespace = freshLimiterNamespace();
    const counter = { asked: 0 };
    const wrapped = {
      idFromName: (name: string) => namespace.idFromName(name),
      get: (id: DurableObjectId) => {
        const stub = namespace.get(id);
        return {
          acquire: (...args: Parameters<ProviderRateLimiter["acquire"]>) => {
            counter.asked++;
            return stub.acquire(...args);
          },
          quota: (...args: Parameters<ProviderRateLimiter["quota"]>) => stub.quota(...args),
        };
      },
    } as unknown as DurableObjectNamespace<ProviderRateLimiter>;
    return { namespace: wrapped, counter };
  }

  it("is given up and a new one asked for, so the request still goes out on its slot", async () => {
    const config = loadConfig({ ...env, OPENLIBRARY_RATE_PER_SECOND: "3" });
    const { namespace, counter } = countingNamespace();
    let sleeps = 0;
    const limiter = durableRateLimiter(namespace, config, {
      // The first wake-up is 400 ms late (a busy isolate); later ones are on time.
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms + (sleeps++ === 0 ? 400 : 0))),
    });
    await limiter.acquire("openlibrary"); // takes the first slot at once
    const before = counter.asked;
    await limiter.acquire("openlibrary");
    expect(counter.asked - before).toBe(2);
  });

  it("does not count the replacement slot against the day's quota", async () => {
    const config = loadConfig({ ...env, GOOGLE_BOOKS_RATE_PER_SECOND: "3", GOOGLE_BOOKS_DAILY_QUOTA: "10" });
    const { namespace, counter } = countingNamespace();
    let sleeps = 0;
    const limiter = durableRateLimiter(namespace, config, {
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms + (sleeps++ === 0 ? 400 : 0))),
    });
    await limiter.acquire("googlebooks");
    const before = counter.asked;
    await limiter.acquire("googlebooks");
    expect(counter.asked - before).toBe(2);
    expect((await quotaReport(namespace, config)).googlebooks).toMatchObject({ used: 2, limit: 10 });
  });

  it("defers the message after missing MAX_MISSED_SLOTS slots in a row", async () => {
    const config = loadConfig({ ...env, OPENLIBRARY_RATE_PER_SECOND: "3" });
    const { namespace, counter } = countingNamespace();
    const limiter = durableRateLimiter(namespace, config, {
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms + 200)),
    });
    await limiter.acquire("openlibrary"); // the first slot is now: no sleep
    await expect(limiter.acquire("openlibrary")).rejects.toMatchObject({
      code: "rate_limited_locally",
      kind: "transient",
    });
    expect(counter.asked).toBe(1 + MAX_MISSED_SLOTS);
  });
});
