import type { Config } from "../config";
import { AppError } from "../errors";
import type { ProviderRateLimiter } from "../sources/rate-limiter-do";

/** Spends one unit of a public reader's allowance before a cache miss goes upstream. */
export type ReadAllowance = () => Promise<void>;

/**
 * The public read API's own small share of the providers: one token bucket per client (by IP) and one
 * for all clients, kept in the rate-limiter Durable Object so every isolate sees the same count. Past
 * either, the miss is answered 429 with Retry-After; hits are never limited. 0 turns a bucket off.
 */
export function publicReadAllowance(
  namespace: DurableObjectNamespace<ProviderRateLimiter>,
  config: Config,
  client: string,
): ReadAllowance {
  const buckets = [
    {
      name: `read-allowance:client:${client}`,
      perMinute: config.PUBLIC_READ_MISSES_PER_MINUTE,
      scope: "client",
    },
    { name: "read-allowance:all", perMinute: config.PUBLIC_READ_MISSES_GLOBAL_PER_MINUTE, scope: "global" },
  ].filter((b) => b.perMinute > 0);
  return async () => {
    for (const bucket of buckets) {
      const stub = namespace.get(namespace.idFromName(bucket.name));
      const grant = await stub.takeAllowance(bucket.perMinute);
      if (!grant.granted) {
        const retryAfterSeconds = Math.max(1, Math.ceil(grant.retryAfterMs / 1000));
        throw new AppError({
          code: "read_allowance_exceeded",
          message: `too many cache misses from ${bucket.scope === "client" ? "this client" : "all public readers"}: each miss asks the book sources, which the warmer needs too; try again in ${retryAfterSeconds} s`,
          httpStatus: 429,
          kind: "transient",
          retryAfterSeconds,
          details: { scope: bucket.scope, perMinute: bucket.perMinute },
        });
      }
    }
  };
}
