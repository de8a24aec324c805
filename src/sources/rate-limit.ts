import type { Config } from "../config";
import { DeferError } from "../errors";
import type { RateLimiter } from "./index";
import type { ProviderRateLimiter } from "./rate-limiter-do";
import type { SourceName } from "./types";

/** How long a consumer waits for a slot before it gives the message back to the queue instead. */
export const MAX_SLOT_WAIT_MS = 20_000;

export function rateFor(config: Config, source: SourceName): number {
  return source === "openlibrary" ? config.OPENLIBRARY_RATE_PER_SECOND : config.GOOGLE_BOOKS_RATE_PER_SECOND;
}

/** The global, cross-isolate rate limit: one Durable Object per provider hands out request slots. */
export function durableRateLimiter(
  namespace: DurableObjectNamespace<ProviderRateLimiter>,
  config: Config,
  options: { maxWaitMs?: number; sleep?: (ms: number) => Promise<void> } = {},
): RateLimiter {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const stub = (source: SourceName) => namespace.get(namespace.idFromName(source));
  return {
    async acquire(source) {
      const rate = rateFor(config, source);
      if (rate <= 0) return;
      const grant = await stub(source).acquire(rate, options.maxWaitMs ?? MAX_SLOT_WAIT_MS);
      if (!grant.granted) {
        throw new DeferError({
          source,
          code: "rate_limited_locally",
          message: `${source} request slots are booked ${Math.ceil(grant.waitMs / 1000)} s ahead`,
          retryAfterSeconds: Math.ceil(grant.waitMs / 1000),
        });
      }
      if (grant.waitMs > 0) await sleep(grant.waitMs);
    },
    async pause(source, seconds) {
      await stub(source).pause(seconds * 1000);
    },
  };
}
