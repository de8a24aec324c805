import { type BreakerSnapshot, CircuitBreaker } from "../lib/breaker";
import type { Budget } from "../lib/budget";
import { keyFits } from "./keys";

/**
 * The fail-open cache: a KV failure never fails a request or a warm. A read error is a miss, a write
 * error is logged and dropped. After 3 consecutive KV failures the breaker opens and the cache is
 * bypassed (reads miss, writes are skipped) until one call is let through 15 s later.
 */
export interface CacheStats {
  hits: number;
  misses: number;
  reads: number;
  writes: number;
  deletes: number;
  errors: number;
  bypassed: number;
}

export interface Cache {
  get<T>(key: string): Promise<T | null>;
  set(key: string, value: unknown, ttlSeconds: number): Promise<boolean>;
  delete(key: string): Promise<boolean>;
  list(prefix: string, limit: number): Promise<string[]>;
  stats: CacheStats;
  breaker: BreakerSnapshot;
}

/** KV's smallest accepted expirationTtl. */
const KV_MIN_TTL_SECONDS = 60;

export function createKvBreaker(now: () => number = Date.now): CircuitBreaker {
  return new CircuitBreaker("kv", { failureThreshold: 3, coolDownMs: 15_000, now });
}

/**
 * One per isolate and per side, so a KV outage noticed by one call is respected by the next, and the
 * public read API (anyone's input) can never open the breaker the warmer writes through.
 */
export const isolateKvBreaker = createKvBreaker();
export const isolateReaderKvBreaker = createKvBreaker();

/** KV refused the call because of what was asked (bad key, value too large), not because it is down. */
function isInputError(error: unknown): boolean {
  return /\b(400|413|414)\b|key length|too long|too large|invalid key|exceeds/i.test(String(error));
}

export function createCache(
  kv: KVNamespace,
  options: { breaker?: CircuitBreaker; budget?: Budget | undefined } = {},
): Cache {
  const breaker = options.breaker ?? isolateKvBreaker;
  const stats: CacheStats = { hits: 0, misses: 0, reads: 0, writes: 0, deletes: 0, errors: 0, bypassed: 0 };

  async function guarded<R>(op: string, key: string, fallback: R, fn: () => Promise<R>): Promise<R> {
    if (!keyFits(key)) {
      // Callers build keys through keys.ts, which bounds them; this is the last line, never a KV error.
      stats.bypassed++;
      console.warn(JSON.stringify({ msg: "kv key refused before the call", op, bytes: key.length }));
      return fallback;
    }
    if (!breaker.tryAcquire()) {
      stats.bypassed++;
      return fallback;
    }
    try {
      options.budget?.take(1);
    } catch (error) {
      // Out of KV operations for this invocation: not KV's fault, so the breaker is not told.
      breaker.recordSuccess();
      stats.bypassed++;
      console.warn(JSON.stringify({ msg: "kv budget exhausted", op, key, error: String(error) }));
      return fallback;
    }
    try {
      const result = await fn();
      breaker.recordSuccess();
      return result;
    } catch (error) {
      if (isInputError(error)) breaker.recordNeutral();
      else breaker.recordFailure();
      stats.errors++;
      console.error(
        JSON.stringify({ msg: "kv operation failed", op, key: key.slice(0, 200), error: String(error) }),
      );
      return fallback;
    }
  }

  return {
    stats,
    get breaker() {
      return breaker.snapshot();
    },
    async get<T>(key: string): Promise<T | null> {
      stats.reads++;
      const value = await guarded("get", key, null, () => kv.get<T>(key, "json"));
      if (value === null) stats.misses++;
      else stats.hits++;
      return value;
    },
    async set(key: string, value: unknown, ttlSeconds: number): Promise<boolean> {
      stats.writes++;
      return guarded("put", key, false, async () => {
        await kv.put(key, JSON.stringify(value), { expirationTtl: Math.max(KV_MIN_TTL_SECONDS, ttlSeconds) });
        return true;
      });
    },
    async delete(key: string): Promise<boolean> {
      stats.deletes++;
      return guarded("delete", key, false, async () => {
        await kv.delete(key);
        return true;
      });
    },
    async list(prefix: string, limit: number): Promise<string[]> {
      stats.reads++;
      return guarded("list", prefix, [] as string[], async () => {
        const page = await kv.list({ prefix, limit });
        return page.keys.map((k) => k.name);
      });
    },
  };
}
