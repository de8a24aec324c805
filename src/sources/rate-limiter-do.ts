import { DurableObject } from "cloudflare:workers";
import { type BucketGrant, type BucketState, takeToken } from "../lib/token-bucket";
import { exhaustQuota, type QuotaPolicy, type QuotaState, quotaStatus, takeQuota } from "./quota";
import { type SlotGrant, SlotScheduler } from "./slots";

const NEXT_SLOT_KEY = "nextSlot";
const BUCKET_KEY = "bucket";
const QUOTA_KEY = "quota";

/** A slot grant, or the day's quota is spent until `quotaResetAt`. */
export type ProviderGrant = SlotGrant & { quotaExhausted?: boolean; quotaResetAt?: number };

/**
 * One instance per provider (named by the provider): the single place every consumer invocation, in
 * every isolate, asks before calling that provider. A Durable Object runs one call at a time, so the
 * schedule needs no locking; the next free slot is persisted so an eviction cannot reset the pace.
 * Instances named `read-allowance:…` hold the public read API's token buckets (one per client and one
 * for all clients), so anonymous misses cannot take the warmer's share of a provider's rate.
 */
export class ProviderRateLimiter extends DurableObject<Env> {
  private readonly scheduler: SlotScheduler;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const saved = ctx.storage.kv.get<number>(NEXT_SLOT_KEY);
    this.scheduler = new SlotScheduler(typeof saved === "number" ? saved : 0);
  }

  /**
   * A request slot at the provider's rate, within its daily quota when one is given: a spent quota books no
   * slot, and a slot the caller does not get is not counted against the quota. Both persist in storage, so
   * neither an eviction nor a deploy resets the pace or the day's count.
   */
  acquire(ratePerSecond: number, maxWaitMs: number, quota?: QuotaPolicy): ProviderGrant {
    const now = Date.now();
    const counted = quota ? takeQuota(this.savedQuota(), quota, now) : null;
    if (counted && !counted.granted) {
      this.ctx.storage.kv.put(QUOTA_KEY, counted.state);
      return { granted: false, slotAt: now, waitMs: 0, quotaExhausted: true, quotaResetAt: counted.resetAt };
    }
    const grant = this.scheduler.acquire(ratePerSecond, now, maxWaitMs);
    if (grant.granted) {
      this.ctx.storage.kv.put(NEXT_SLOT_KEY, this.scheduler.next);
      if (counted) this.ctx.storage.kv.put(QUOTA_KEY, counted.state);
    }
    return grant;
  }

  /** The provider said its daily quota is spent (Google's 429/403 daily-limit answers): skip it until reset. */
  exhaust(quota: QuotaPolicy): number {
    const state = exhaustQuota(this.savedQuota(), quota, Date.now());
    this.ctx.storage.kv.put(QUOTA_KEY, state);
    return state.exhaustedUntil ?? Date.now();
  }

  /** Used of limit today, and when the quota day resets (for /health and job progress). */
  quota(quota: QuotaPolicy): ReturnType<typeof quotaStatus> {
    return quotaStatus(this.savedQuota(), quota, Date.now());
  }

  private savedQuota(): QuotaState | null {
    return this.ctx.storage.kv.get<QuotaState>(QUOTA_KEY) ?? null;
  }

  /** Takes one token from this instance's bucket (capacity per minute); persisted across evictions. */
  takeAllowance(perMinute: number): Pick<BucketGrant, "granted" | "retryAfterMs"> {
    const saved = this.ctx.storage.kv.get<BucketState>(BUCKET_KEY) ?? null;
    const grant = takeToken(saved, perMinute, Date.now());
    this.ctx.storage.kv.put(BUCKET_KEY, grant.state);
    return { granted: grant.granted, retryAfterMs: grant.retryAfterMs };
  }

  pause(milliseconds: number): number {
    this.scheduler.pauseUntil(Date.now() + milliseconds);
    this.ctx.storage.kv.put(NEXT_SLOT_KEY, this.scheduler.next);
    return this.scheduler.next;
  }
}
