import { z } from "zod";
import { PRIORITY_WEIGHTS } from "../config";
import { type QuotaPolicy, type QuotaState, takeQuota } from "./quota";
import { type SlotGrant, SlotScheduler, slotSpacingMs } from "./slots";

export type Priority = keyof typeof PRIORITY_WEIGHTS;
export const PRIORITIES = ["high", "normal", "low"] as const satisfies readonly Priority[];
export const prioritySchema = z.enum(PRIORITIES);

/** Who asks for a slot: the job whose work the request is for, at that job's priority. */
export const requesterSchema = z.object({ jobId: z.string().min(1).max(200), priority: prioritySchema });
export type Requester = z.infer<typeof requesterSchema>;

/**
 * A request that belongs to no job: a public read miss. Someone is waiting on the page, and the read
 * allowance already bounds how many there are, so it goes with the high jobs.
 */
export const INTERACTIVE_REQUESTER: Requester = { jobId: "(read)", priority: "high" };

/** A slot grant, or the day's quota is spent until `quotaResetAt`. */
export type ProviderGrant = SlotGrant & { quotaExhausted?: boolean; quotaResetAt?: number };

export interface SlotRequest {
  requester: Requester;
  ratePerSecond: number;
  /** The longest the caller will wait for its slot; past it the answer is "not granted" (deferred). */
  maxWaitMs: number;
  quota?: QuotaPolicy | undefined;
}

interface Waiter<T> {
  request: SlotRequest;
  handle: T;
  arrivedAt: number;
}

/**
 * Who gets a slot is decided this long before it: the caller sleeps the rest on its side (as before), so
 * the grant's trip back from the Durable Object does not delay the request past its slot.
 */
export const GRANT_LOOKAHEAD_MS = 50;

export interface Tick<T> {
  answers: [T, ProviderGrant][];
  /** When to call tick again (epoch ms), or null when nobody waits. */
  wakeAt: number | null;
}

/**
 * The provider's grants in priority order, never faster than its rate. Waiters queue by priority level and,
 * within a level, by job; each slot goes to a level by smooth weighted round robin over the levels that have
 * waiters (PRIORITY_WEIGHTS: high gets 4 slots to normal's 2 to low's 1 while all wait, so low work is slowed,
 * never starved), and within the level to the next job in turn (round robin), each job's own requests in
 * arrival order. Spacing comes from SlotScheduler, so however the waiters are ordered no one-second window
 * holds more than R grants; the daily quota is counted when a slot is granted, never for a refused one.
 * Pure: the caller supplies the clock and delivers the answers (the Durable Object resolves its promises).
 */
export class GrantScheduler<T> {
  private readonly slots: SlotScheduler;
  private quotaState: QuotaState | null;
  /** Per level, the jobs with waiters in turn order (a Map keeps insertion order: served → moved last). */
  private readonly levels = new Map<Priority, Map<string, Waiter<T>[]>>(
    PRIORITIES.map((p) => [p, new Map()]),
  );
  private readonly credit = new Map<Priority, number>(PRIORITIES.map((p) => [p, 0]));
  private waiting = 0;
  private readonly weights: Record<Priority, number>;
  private readonly lookaheadMs: number;

  constructor(
    saved: { nextSlot?: number; quota?: QuotaState | null } = {},
    options: { weights?: Record<Priority, number>; lookaheadMs?: number } = {},
  ) {
    this.slots = new SlotScheduler(saved.nextSlot ?? 0);
    this.quotaState = saved.quota ?? null;
    this.weights = options.weights ?? PRIORITY_WEIGHTS;
    this.lookaheadMs = options.lookaheadMs ?? GRANT_LOOKAHEAD_MS;
  }

  /**
   * A new request: answered at once when the quota is spent, when the provider is unpaced, or when it cannot
   * be served within its max wait even if nobody else asked (a pause, or its own job's queue ahead of it);
   * otherwise queued (null) for tick() to answer.
   */
  request(request: SlotRequest, handle: T, now: number): ProviderGrant | null {
    if (request.quota) {
      const check = takeQuota(this.quotaState, request.quota, now);
      if (!check.granted) {
        this.quotaState = check.state;
        return { granted: false, slotAt: now, waitMs: 0, quotaExhausted: true, quotaResetAt: check.resetAt };
      }
      if (request.ratePerSecond <= 0) {
        this.quotaState = check.state;
        return { granted: true, slotAt: now, waitMs: 0 };
      }
    }
    if (request.ratePerSecond <= 0) return { granted: true, slotAt: now, waitMs: 0 };
    const jobs = this.levels.get(request.requester.priority) as Map<string, Waiter<T>[]>;
    const own = jobs.get(request.requester.jobId) ?? [];
    const soonest = Math.max(now, this.slots.next) + own.length * slotSpacingMs(request.ratePerSecond);
    if (soonest - now > request.maxWaitMs) return { granted: false, slotAt: soonest, waitMs: soonest - now };
    own.push({ request, handle, arrivedAt: now });
    jobs.set(request.requester.jobId, own);
    this.waiting++;
    return null;
  }

  /** Grants every slot due within the lookahead, refuses waiters whose max wait has run out. */
  tick(now: number): Tick<T> {
    const answers: [T, ProviderGrant][] = [];
    for (;;) {
      if (this.waiting === 0) return { answers, wakeAt: null };
      const slotAt = Math.max(now, this.slots.next);
      this.expire(slotAt, now, answers);
      if (this.waiting === 0) return { answers, wakeAt: null };
      if (slotAt - now > this.lookaheadMs) return { answers, wakeAt: slotAt - this.lookaheadMs };
      const waiter = this.pick();
      answers.push([waiter.handle, this.grant(waiter.request, now)]);
    }
  }

  /** The provider asked us to back off (Retry-After): nobody gets a slot before `until`. */
  pauseUntil(until: number): void {
    this.slots.pauseUntil(until);
  }

  /** Replaces the quota count (the provider said the day's quota is spent). */
  setQuota(state: QuotaState): void {
    this.quotaState = state;
  }

  get quota(): QuotaState | null {
    return this.quotaState;
  }

  get next(): number {
    return this.slots.next;
  }

  get size(): number {
    return this.waiting;
  }

  private grant(request: SlotRequest, now: number): ProviderGrant {
    if (request.quota) {
      const counted = takeQuota(this.quotaState, request.quota, now);
      this.quotaState = counted.state;
      if (!counted.granted)
        return {
          granted: false,
          slotAt: now,
          waitMs: 0,
          quotaExhausted: true,
          quotaResetAt: counted.resetAt,
        };
    }
    return this.slots.acquire(request.ratePerSecond, now, Number.POSITIVE_INFINITY);
  }

  /** Waiters that would get the next slot only after their max wait are told so now (they defer). */
  private expire(slotAt: number, now: number, answers: [T, ProviderGrant][]): void {
    for (const jobs of this.levels.values()) {
      for (const [jobId, queue] of jobs) {
        const kept = queue.filter((w) => {
          if (w.arrivedAt + w.request.maxWaitMs >= slotAt) return true;
          // How long the queue now is: a hint for when to come back, not a promise.
          const waitMs = slotAt - now + this.waiting * slotSpacingMs(w.request.ratePerSecond);
          answers.push([w.handle, { granted: false, slotAt: now + waitMs, waitMs }]);
          return false;
        });
        this.waiting -= queue.length - kept.length;
        if (kept.length === 0) jobs.delete(jobId);
        else jobs.set(jobId, kept);
      }
    }
  }

  /** Smooth weighted round robin over the levels with waiters, then round robin over that level's jobs. */
  private pick(): Waiter<T> {
    const active = PRIORITIES.filter((p) => (this.levels.get(p)?.size ?? 0) > 0);
    let total = 0;
    let best: Priority = active[0] as Priority;
    for (const p of PRIORITIES) {
      if (!active.includes(p)) {
        // An idle level banks nothing: it cannot come back and take a burst of slots in a row.
        this.credit.set(p, 0);
        continue;
      }
      this.credit.set(p, (this.credit.get(p) ?? 0) + this.weights[p]);
      total += this.weights[p];
      if ((this.credit.get(p) ?? 0) > (this.credit.get(best) ?? 0)) best = p;
    }
    this.credit.set(best, (this.credit.get(best) ?? 0) - total);
    const jobs = this.levels.get(best) as Map<string, Waiter<T>[]>;
    const [jobId, queue] = jobs.entries().next().value as [string, Waiter<T>[]];
    const waiter = queue.shift() as Waiter<T>;
    jobs.delete(jobId);
    if (queue.length > 0) jobs.set(jobId, queue);
    this.waiting--;
    return waiter;
  }
}
