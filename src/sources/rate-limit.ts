import type { Config } from "../config";
import { DeferError, QuotaExhaustedError } from "../errors";
import type { RateLimiter } from "./index";
import type { QuotaPolicy } from "./quota";
import type { ProviderGrant, ProviderRateLimiter } from "./rate-limiter-do";
import { ARRIVAL_JITTER_ALLOWANCE_MS, lateSlotToleranceMs } from "./slots";
import type { SourceName } from "./types";

/**
 * How long a consumer waits for a slot (inside the provider's Durable Object, in priority order) before it
 * gives the message back to the queue instead.
 */
export const MAX_SLOT_WAIT_MS = 20_000;

/** Slots a caller may miss (woken too late to use them on time) before its message is deferred instead. */
export const MAX_MISSED_SLOTS = 3;

export function rateFor(config: Config, source: SourceName): number {
  return source === "openlibrary" ? config.OPENLIBRARY_RATE_PER_SECOND : config.GOOGLE_BOOKS_RATE_PER_SECOND;
}

/** Whether a request to this provider first asks its Durable Object (for a slot, or against the quota). */
export function usesProviderObject(config: Config, source: SourceName): boolean {
  return rateFor(config, source) > 0 || quotaFor(config, source).limit > 0;
}

/** Google's quota day ends at midnight Pacific time; Open Library's (when one is set) at midnight UTC. */
export function quotaFor(config: Config, source: SourceName): QuotaPolicy {
  return source === "googlebooks"
    ? { limit: config.GOOGLE_BOOKS_DAILY_QUOTA, timeZone: "America/Los_Angeles" }
    : { limit: config.OPENLIBRARY_DAILY_QUOTA, timeZone: "UTC" };
}

/** Each provider's quota today: used, limit (null = unlimited), exhausted, resetAt. */
export async function quotaReport(
  namespace: DurableObjectNamespace<ProviderRateLimiter>,
  config: Config,
): Promise<Record<SourceName, Awaited<ReturnType<ProviderRateLimiter["quota"]>>>> {
  const stub = (source: SourceName) => namespace.get(namespace.idFromName(source));
  const [openlibrary, googlebooks] = await Promise.all([
    stub("openlibrary").quota(quotaFor(config, "openlibrary")),
    stub("googlebooks").quota(quotaFor(config, "googlebooks")),
  ]);
  return { openlibrary, googlebooks };
}

/** The grant, or why there is none: the day's quota is spent, or the slots are booked past the caller's wait. */
function usable(source: SourceName, grant: ProviderGrant): ProviderGrant {
  if (grant.quotaExhausted)
    throw new QuotaExhaustedError({ source, resetAt: grant.quotaResetAt ?? Date.now() });
  if (!grant.granted) {
    throw new DeferError({
      source,
      code: "rate_limited_locally",
      message: `${source} request slots are booked ${Math.ceil(grant.waitMs / 1000)} s ahead`,
      retryAfterSeconds: Math.ceil(grant.waitMs / 1000),
    });
  }
  return grant;
}

/**
 * Sleeps until the slot and says whether the request may still go. The grant arrives a little before its
 * slot: the sleep is by this isolate's clock, which takes the answer's trip back off, and never longer than
 * the object said. Woken past the slot by more than the tolerance (the isolate was busy, say parsing another
 * batch's answer, when the timer was due), the request could land within a second of the next slot's and
 * put R + 1 in that second: the slot is given up. A grant that came at or after its slot (the provider was
 * idle: no timer) is late by its trip only and may use the whole jitter allowance.
 */
async function keptSlot(grant: ProviderGrant, rate: number, sleep: (ms: number) => Promise<void>) {
  const wait = Math.min(grant.waitMs, grant.slotAt - Date.now());
  if (wait > 0) await sleep(wait);
  const tolerance = wait > 0 ? lateSlotToleranceMs(rate) : ARRIVAL_JITTER_ALLOWANCE_MS;
  return Date.now() - grant.slotAt <= tolerance;
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
    async acquire(source, requester) {
      const rate = rateFor(config, source);
      const quota = quotaFor(config, source);
      // Unpaced and without a daily quota: nothing to ask the provider's Durable Object.
      if (rate <= 0 && quota.limit <= 0) return;
      for (let missed = 0; ; missed++) {
        // A replacement for a missed slot is not another request against the day's quota: counted once.
        const counted = missed === 0 ? quota : undefined;
        const grant = usable(
          source,
          await stub(source).acquire(rate, options.maxWaitMs ?? MAX_SLOT_WAIT_MS, counted, requester),
        );
        // Unpaced (a daily quota only): there is no slot to keep.
        if (rate <= 0 || (await keptSlot(grant, rate, sleep))) return;
        console.warn(
          JSON.stringify({ msg: "request slot missed", source, lateMs: Date.now() - grant.slotAt }),
        );
        if (missed + 1 >= MAX_MISSED_SLOTS) {
          throw new DeferError({
            source,
            code: "rate_limited_locally",
            message: `${source}: this isolate woke too late for ${MAX_MISSED_SLOTS} request slots in a row`,
            retryAfterSeconds: 1,
          });
        }
      }
    },
    async pause(source, seconds) {
      await stub(source).pause(seconds * 1000);
    },
    async exhaust(source) {
      return stub(source).exhaust(quotaFor(config, source));
    },
  };
}
