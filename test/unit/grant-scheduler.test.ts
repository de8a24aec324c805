import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  GRANT_LOOKAHEAD_MS,
  GrantScheduler,
  type Priority,
  type ProviderGrant,
  type Requester,
} from "../../src/sources/grant-scheduler";
import type { QuotaPolicy } from "../../src/sources/quota";
import { slotSpacingMs } from "../../src/sources/slots";

/** One caller in a simulation: when it asks, as whom, and how long it will wait. */
interface Arrival {
  at: number;
  requester: Requester;
  maxWaitMs: number;
}

interface Answered {
  arrival: Arrival;
  grant: ProviderGrant;
  answeredAt: number;
}

/**
 * Drives a scheduler the way the Durable Object does: each arrival asks at its time, and tick() runs at once
 * and then whenever it asks to be woken. Returns every caller's answer in the order they were given.
 */
function simulate(
  arrivals: readonly Arrival[],
  options: { rate: number; quota?: QuotaPolicy; start?: number; nextSlot?: number },
): Answered[] {
  const scheduler = new GrantScheduler<Arrival>({ nextSlot: options.nextSlot ?? 0 });
  const pending = [...arrivals].sort((a, b) => a.at - b.at);
  const answered: Answered[] = [];
  let wakeAt: number | null = null;
  for (;;) {
    const nextArrival = pending[0]?.at ?? Number.POSITIVE_INFINITY;
    const now = Math.min(nextArrival, wakeAt ?? Number.POSITIVE_INFINITY);
    if (now === Number.POSITIVE_INFINITY) return answered;
    while (pending.length > 0 && (pending[0] as Arrival).at === now) {
      const arrival = pending.shift() as Arrival;
      const request = {
        requester: arrival.requester,
        ratePerSecond: options.rate,
        maxWaitMs: arrival.maxWaitMs,
        quota: options.quota,
      };
      const grant = scheduler.request(request, arrival, now);
      if (grant) answered.push({ arrival, grant, answeredAt: now });
    }
    const tick = scheduler.tick(now);
    for (const [arrival, grant] of tick.answers) answered.push({ arrival, grant, answeredAt: now });
    wakeAt = tick.wakeAt;
  }
}

const ask = (jobId: string, priority: Priority, at = 0, maxWaitMs = 3_600_000): Arrival => ({
  at,
  requester: { jobId, priority },
  maxWaitMs,
});

const many = (count: number, jobId: string, priority: Priority, at = 0, maxWaitMs?: number) =>
  Array.from({ length: count }, () => ask(jobId, priority, at, maxWaitMs));

const grantedJobs = (answers: Answered[]) =>
  answers.filter((a) => a.grant.granted).map((a) => a.arrival.requester.jobId);

/** The most grants whose slots fall in any one-second window. */
function busiestSecond(slots: number[]): number {
  const sorted = [...slots].sort((a, b) => a - b);
  let worst = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (j < sorted.length && (sorted[j] as number) < (sorted[i] as number) + 1000) j++;
    worst = Math.max(worst, j - i);
  }
  return worst;
}

describe("the provider's grant scheduler (src/sources/grant-scheduler.ts)", () => {
  it("a high request waiting behind many normal ones gets the next slot", () => {
    // The big job's 30 requests queue first; the high one arrives 2.5 s later.
    const answers = simulate([...many(30, "big", "normal"), ask("small", "high", 2500)], { rate: 3 });
    const order = grantedJobs(answers);
    expect(order).toHaveLength(31);
    const slot = answers.find((a) => a.arrival.requester.jobId === "small")?.grant.slotAt as number;
    // The first slot decided after it arrived (decisions are made GRANT_LOOKAHEAD_MS before the slot).
    expect(slot - 2500).toBeLessThanOrEqual(slotSpacingMs(3) + GRANT_LOOKAHEAD_MS);
    expect(order.indexOf("small")).toBeLessThan(10);
  });

  it("shares slots by weight while levels compete (4 : 2 : 1), so low is slowed but never starved", () => {
    const answers = simulate(
      [...many(400, "h", "high"), ...many(400, "n", "normal"), ...many(400, "l", "low")],
      {
        rate: 10,
      },
    );
    const first = grantedJobs(answers).slice(0, 70);
    expect(first.filter((j) => j === "h")).toHaveLength(40);
    expect(first.filter((j) => j === "n")).toHaveLength(20);
    expect(first.filter((j) => j === "l")).toHaveLength(10);
    // Within any seven consecutive grants, low gets one: no long run without it.
    const lows = first.flatMap((j, i) => (j === "l" ? [i] : []));
    for (let i = 1; i < lows.length; i++)
      expect((lows[i] as number) - (lows[i - 1] as number)).toBeLessThanOrEqual(7);
  });

  it("round robin across jobs of one priority: each gets every other slot, whoever queued first", () => {
    const answers = simulate([...many(50, "a", "normal"), ...many(50, "b", "normal", 10)], { rate: 5 });
    const order = grantedJobs(answers);
    // a had the first slot to itself (b had not asked yet); from then on they alternate.
    const contested = order.slice(1, 81);
    expect(contested.filter((j) => j === "a")).toHaveLength(40);
    for (let i = 1; i < contested.length; i++) expect(contested[i]).not.toBe(contested[i - 1]);
  });

  it("a job's own requests are served in the order it asked", () => {
    const arrivals = Array.from({ length: 12 }, (_, i) => ask("solo", "normal", i));
    const answers = simulate(arrivals, { rate: 3 });
    expect(answers.map((a) => a.arrival.at)).toEqual(arrivals.map((a) => a.at));
  });

  it("refuses at once a request its own job's queue puts past its max wait, reserving nothing", () => {
    const answers = simulate(many(30, "big", "normal", 0, 20_000), { rate: 1 });
    const refused = answers.filter((a) => !a.grant.granted);
    // 1050 ms apart: slots 0 … 19 × 1050 fit in 20 s, the 21st would not.
    expect(answers.filter((a) => a.grant.granted)).toHaveLength(20);
    expect(refused).toHaveLength(10);
    for (const r of refused) {
      expect(r.answeredAt).toBe(0);
      expect(r.grant.waitMs).toBeGreaterThan(20_000);
    }
  });

  it("a low waiter that cannot be served within its max wait is told so by then (it defers); a patient one is served", () => {
    // At 1/s behind a queue of high requests, low's turn (weight 1 to 4) comes at the third slot, 3150.
    const impatient = simulate([...many(20, "h", "high"), ask("late", "low", 10, 1500)], { rate: 1 });
    const refused = impatient.find((a) => a.arrival.requester.jobId === "late") as Answered;
    expect(refused.grant.granted).toBe(false);
    expect(refused.answeredAt).toBeLessThanOrEqual(10 + 1500 + slotSpacingMs(1));
    expect(refused.grant.waitMs).toBeGreaterThan(0);
    const patient = simulate([...many(20, "h", "high"), ask("late", "low", 10, 5000)], { rate: 1 });
    expect(patient.find((a) => a.arrival.requester.jobId === "late")?.grant).toMatchObject({
      granted: true,
      slotAt: 3 * slotSpacingMs(1),
    });
  });

  it("a pause holds every slot until it ends, then priority applies as usual", () => {
    const scheduler = new GrantScheduler<string>();
    scheduler.pauseUntil(5000);
    expect(
      scheduler.request(
        { requester: { jobId: "n", priority: "normal" }, ratePerSecond: 3, maxWaitMs: 20_000 },
        "n",
        0,
      ),
    ).toBeNull();
    expect(
      scheduler.request(
        { requester: { jobId: "h", priority: "high" }, ratePerSecond: 3, maxWaitMs: 20_000 },
        "h",
        10,
      ),
    ).toBeNull();
    // Past its max wait even with nobody ahead: answered at once.
    expect(
      scheduler.request(
        { requester: { jobId: "x", priority: "high" }, ratePerSecond: 3, maxWaitMs: 1000 },
        "x",
        10,
      ),
    ).toMatchObject({ granted: false, waitMs: 4990 });
    const early = scheduler.tick(100);
    expect(early.answers).toEqual([]);
    expect(early.wakeAt).toBe(5000 - GRANT_LOOKAHEAD_MS);
    const due = scheduler.tick(5000 - GRANT_LOOKAHEAD_MS);
    expect(due.answers.map(([who, grant]) => [who, grant.slotAt])).toEqual([["h", 5000]]);
  });

  const arrivalArb = fc.record({
    at: fc.integer({ min: 0, max: 8_000 }),
    requester: fc.record({
      jobId: fc.constantFrom("j1", "j2", "j3", "j4"),
      priority: fc.constantFrom<Priority>("high", "normal", "low"),
    }),
    maxWaitMs: fc.integer({ min: 0, max: 30_000 }),
  });

  it("property: whatever the arrivals, no one-second window holds more than R grants, nobody waits past its max wait, everyone is answered once", () => {
    fc.assert(
      fc.property(
        fc.array(arrivalArb, { minLength: 20, maxLength: 150, size: "max" }),
        fc.integer({ min: 1, max: 20 }),
        (arrivals, rate) => {
          const answers = simulate(arrivals, { rate });
          expect(answers).toHaveLength(arrivals.length);
          const granted = answers.filter((a) => a.grant.granted);
          expect(busiestSecond(granted.map((a) => a.grant.slotAt))).toBeLessThanOrEqual(rate);
          for (const a of granted) {
            // Answered no earlier than the lookahead before its slot, never after it, within its max wait.
            expect(a.grant.slotAt - a.answeredAt).toBe(a.grant.waitMs);
            expect(a.grant.waitMs).toBeGreaterThanOrEqual(0);
            expect(a.grant.waitMs).toBeLessThanOrEqual(GRANT_LOOKAHEAD_MS);
            expect(a.grant.slotAt - a.arrival.at).toBeLessThanOrEqual(a.arrival.maxWaitMs);
          }
          for (const a of answers.filter((x) => !x.grant.granted))
            expect(a.answeredAt - a.arrival.at).toBeLessThanOrEqual(a.arrival.maxWaitMs);
        },
      ),
      { numRuns: 150 },
    );
  });

  it("property: grants never pass the day's quota, and once it is spent every caller is told so", () => {
    const day = Date.UTC(2026, 11, 2, 8);
    fc.assert(
      fc.property(
        fc.array(arrivalArb, { minLength: 1, maxLength: 80, size: "max" }),
        fc.integer({ min: 0, max: 40 }),
        (arrivals, limit) => {
          const shifted = arrivals.map((a) => ({ ...a, at: day + a.at, maxWaitMs: 3_600_000 }));
          const answers = simulate(shifted, { rate: 5, quota: { limit, timeZone: "UTC" }, nextSlot: day });
          const granted = answers.filter((a) => a.grant.granted).length;
          // Unlimited wait: everyone is granted until the quota is spent (0 = no quota).
          expect(granted).toBe(limit === 0 ? arrivals.length : Math.min(limit, arrivals.length));
          for (const a of answers.filter((x) => !x.grant.granted)) expect(a.grant.quotaExhausted).toBe(true);
        },
      ),
      { numRuns: 100 },
    );
  });

  it("property: while two jobs of one priority both wait, neither gets more than one slot ahead of the other", () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 60 }), fc.integer({ min: 2, max: 60 }), (a, b) => {
        const order = grantedJobs(simulate([...many(a, "a", "low"), ...many(b, "b", "low")], { rate: 4 }));
        const both = 2 * Math.min(a, b);
        const share = order.slice(0, both).filter((j) => j === "a").length;
        expect(Math.abs(share - both / 2)).toBeLessThanOrEqual(1);
      }),
    );
  });
});
