import { DurableObject } from "cloudflare:workers";
import { type BucketGrant, type BucketState, takeToken } from "../lib/token-bucket";
import {
  GrantScheduler,
  INTERACTIVE_REQUESTER,
  type ProviderGrant,
  type Requester,
  requesterSchema,
} from "./grant-scheduler";
import { exhaustQuota, type QuotaPolicy, type QuotaState, quotaStatus } from "./quota";

export type { ProviderGrant } from "./grant-scheduler";

const NEXT_SLOT_KEY = "nextSlot";
const BUCKET_KEY = "bucket";
const QUOTA_KEY = "quota";

type Resolve = (grant: ProviderGrant) => void;

/**
 * One instance per provider (named by the provider): the single place every consumer invocation, in
 * every isolate, asks before calling that provider. Callers wait inside the object; at each slot the
 * GrantScheduler picks who goes next (priority, then round robin across jobs). A Durable Object runs one
 * event at a time, so the queue needs no locking; the next free slot and the day's quota count are
 * persisted so an eviction cannot reset the pace (the waiters themselves are in memory: an eviction fails
 * their calls, and their messages are retried). Instances named `read-allowance:…` hold the public read
 * API's token buckets (one per client and one for all clients), so anonymous misses cannot take the
 * warmer's share of a provider's rate.
 */
export class ProviderRateLimiter extends DurableObject<Env> {
  private readonly scheduler: GrantScheduler<Resolve>;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const saved = ctx.storage.kv.get<number>(NEXT_SLOT_KEY);
    this.scheduler = new GrantScheduler({
      nextSlot: typeof saved === "number" ? saved : 0,
      quota: ctx.storage.kv.get<QuotaState>(QUOTA_KEY) ?? null,
    });
  }

  /**
   * A request slot at the provider's rate, within its daily quota when one is given, answered when the
   * caller's turn comes (a little ahead of its slot: `waitMs` is what is left to sleep). Not granted when it
   * cannot be served within `maxWaitMs`; a spent quota books no slot, and a refused caller is not counted
   * against the quota. `requester` says whose work it is (no requester: a public read miss).
   */
  acquire(
    ratePerSecond: number,
    maxWaitMs: number,
    quota?: QuotaPolicy,
    requester?: Requester,
  ): Promise<ProviderGrant> {
    const who = requester ? requesterSchema.parse(requester) : INTERACTIVE_REQUESTER;
    return new Promise<ProviderGrant>((resolve) => {
      const now = Date.now();
      const answer = this.scheduler.request(
        { requester: who, ratePerSecond, maxWaitMs, quota },
        resolve,
        now,
      );
      if (answer) {
        if (answer.quotaExhausted || answer.granted) this.persist();
        resolve(answer);
        return;
      }
      this.pump();
    });
  }

  /** Answers whoever is due, persists the pace, and sets the timer for the next slot. */
  private pump(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const now = Date.now();
    const { answers, wakeAt } = this.scheduler.tick(now);
    if (answers.length > 0) this.persist();
    for (const [resolve, grant] of answers) resolve(grant);
    if (wakeAt !== null) this.timer = setTimeout(() => this.pump(), Math.max(0, wakeAt - now));
  }

  private persist(): void {
    this.ctx.storage.kv.put(NEXT_SLOT_KEY, this.scheduler.next);
    const quota = this.scheduler.quota;
    if (quota) this.ctx.storage.kv.put(QUOTA_KEY, quota);
  }

  /** The provider said its daily quota is spent (Google's 429/403 daily-limit answers): skip it until reset. */
  exhaust(quota: QuotaPolicy): number {
    const state = exhaustQuota(this.scheduler.quota, quota, Date.now());
    this.scheduler.setQuota(state);
    this.ctx.storage.kv.put(QUOTA_KEY, state);
    // Whoever waits is answered now: the quota is spent for them too.
    this.pump();
    return state.exhaustedUntil ?? Date.now();
  }

  /** Used of limit today, and when the quota day resets (for /health and job progress). */
  quota(quota: QuotaPolicy): ReturnType<typeof quotaStatus> {
    return quotaStatus(this.scheduler.quota, quota, Date.now());
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
    // Waiters whose max wait the pause outlasts are told now; the rest wait for the new first slot.
    this.pump();
    return this.scheduler.next;
  }
}
