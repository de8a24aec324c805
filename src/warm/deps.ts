import type { Config } from "../config";
import { isolateBreakers } from "../sources";
import { durableRateLimiter } from "../sources/rate-limit";
import type { WarmDeps } from "./consumer";

/** The warm consumer's dependencies in a deployed worker: the real clock, fetch and global rate limiter. */
export function consumerDeps(env: Env, config: Config, fetcher?: typeof fetch): WarmDeps {
  return {
    config,
    // Looked up at call time, so whatever `fetch` the isolate has (instrumented or not) is the one used.
    fetch: fetcher ?? ((input, init) => fetch(input, init)),
    now: Date.now,
    random: Math.random,
    breakers: isolateBreakers(config),
    rateLimiter: durableRateLimiter(env.RATE_LIMITER, config),
  };
}

/** The dead-letter queue is consumed by the same worker; its batches are told apart by queue name. */
export const DEAD_LETTER_QUEUE_NAME = "author-warming-dlq";

export function isDeadLetterBatch(batch: MessageBatch<unknown>): boolean {
  return batch.queue.startsWith(DEAD_LETTER_QUEUE_NAME);
}
