import { DurableObject } from "cloudflare:workers";
import { type BucketGrant, type BucketState, takeToken } from "../lib/token-bucket";
import { type SlotGrant, SlotScheduler } from "./slots";

const NEXT_SLOT_KEY = "nextSlot";
const BUCKET_KEY = "bucket";

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

  acquire(ratePerSecond: number, maxWaitMs: number): SlotGrant {
    const grant = this.scheduler.acquire(ratePerSecond, Date.now(), maxWaitMs);
    if (grant.granted) this.ctx.storage.kv.put(NEXT_SLOT_KEY, this.scheduler.next);
    return grant;
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
