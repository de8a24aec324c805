/**
 * Spaces grants evenly: at rate R each grant is 1000/R ms after the previous one, so no one-second
 * window ever holds more than R grants, however many callers ask at once. A caller that would wait
 * longer than `maxWaitMs` gets no slot (and reserves nothing) and is told how long the queue is.
 */
export interface SlotGrant {
  granted: boolean;
  /** When the caller may send its request (epoch ms); when not granted, when a slot would be free. */
  slotAt: number;
  waitMs: number;
}

/**
 * How far apart grants are. A caller sends within `lateSlotToleranceMs` of its slot or gives the slot up
 * (rate-limit.ts), so R + 1 consecutive requests leave the caller at least 1 s plus ARRIVAL_JITTER_ALLOWANCE_MS
 * apart: the margin for the trip to the provider (and its clock), so the provider never sees more than R in
 * any one-second window, not just the limiter. Whole milliseconds, rounded up: fractional spacing (1000/3) let
 * float error squeeze in an extra grant.
 */
export const ARRIVAL_JITTER_ALLOWANCE_MS = 25;
/**
 * How late past its slot a caller may still send (its timer fired late: a busy isolate); later, it asks again.
 * A twentieth of the interval, between 5 and 25 ms: a missed slot costs a whole interval (1 s at 1/s), so slow
 * rates tolerate more, while fast ones keep ≥ 95 % of R (and no rate asks for less than a timer can keep).
 */
export function lateSlotToleranceMs(ratePerSecond: number): number {
  return Math.min(ARRIVAL_JITTER_ALLOWANCE_MS, Math.max(5, Math.floor(1000 / ratePerSecond / 20)));
}

export function slotSpacingMs(ratePerSecond: number): number {
  return Math.ceil((1000 + ARRIVAL_JITTER_ALLOWANCE_MS + lateSlotToleranceMs(ratePerSecond)) / ratePerSecond);
}

export class SlotScheduler {
  private nextSlot = 0;

  constructor(nextSlot = 0) {
    this.nextSlot = nextSlot;
  }

  acquire(ratePerSecond: number, now: number, maxWaitMs: number): SlotGrant {
    if (ratePerSecond <= 0) return { granted: true, slotAt: now, waitMs: 0 };
    const slotAt = Math.max(now, this.nextSlot);
    const waitMs = slotAt - now;
    if (waitMs > maxWaitMs) return { granted: false, slotAt, waitMs };
    this.nextSlot = slotAt + slotSpacingMs(ratePerSecond);
    return { granted: true, slotAt, waitMs };
  }

  /** The provider asked us to back off (Retry-After): nobody gets a slot before `until`. */
  pauseUntil(until: number): void {
    this.nextSlot = Math.max(this.nextSlot, until);
  }

  get next(): number {
    return this.nextSlot;
  }
}
