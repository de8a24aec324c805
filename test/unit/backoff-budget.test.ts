import { describe, expect, it } from "vitest";
import { Budget, createLimiter } from "../../src/lib/budget";
import { retryDelaySeconds } from "../../src/warm/backoff";

describe("retry backoff", () => {
  it("grows exponentially with equal jitter and a cap", () => {
    const at = (attempt: number, random: number) =>
      retryDelaySeconds({ attempt, baseSeconds: 5, maxSeconds: 600, random: () => random });
    expect([1, 2, 3, 4].map((a) => at(a, 0))).toEqual([3, 5, 10, 20]);
    expect([1, 2, 3, 4].map((a) => at(a, 0.999))).toEqual([5, 10, 20, 40]);
    expect(at(20, 0.5)).toBeLessThanOrEqual(600);
    expect(at(20, 0)).toBe(300);
  });

  it("never comes back sooner than Retry-After", () => {
    expect(
      retryDelaySeconds({
        attempt: 1,
        baseSeconds: 5,
        maxSeconds: 600,
        retryAfterSeconds: 120,
        random: () => 0,
      }),
    ).toBe(120);
    expect(retryDelaySeconds({ attempt: 1, baseSeconds: 0, maxSeconds: 0, retryAfterSeconds: 7 })).toBe(7);
  });

  it("stays within the queue's 12-hour delay limit", () => {
    expect(
      retryDelaySeconds({ attempt: 1, baseSeconds: 5, maxSeconds: 600, retryAfterSeconds: 100_000 }),
    ).toBe(43_200);
  });
});

describe("budgets and reservations", () => {
  it("take throws budget_exhausted instead of overrunning", () => {
    const budget = new Budget("subrequest", 3);
    budget.take(2);
    expect(() => budget.take(2)).toThrow(
      expect.objectContaining({ code: "budget_exhausted", kind: "transient" }),
    );
    budget.take(1);
    expect(budget.remaining()).toBe(0);
  });

  it("a reservation holds units, gives back what it did not use, and waiters get them", async () => {
    const budget = new Budget("subrequest", 10);
    const first = await budget.reserve(8);
    expect(first).not.toBeNull();
    expect(budget.remaining()).toBe(2);
    first?.take(3);
    let secondGranted = false;
    const second = budget.reserve(6).then((r) => {
      secondGranted = true;
      return r;
    });
    await Promise.resolve();
    expect(secondGranted).toBe(false);
    first?.release();
    const granted = await second;
    expect(granted).not.toBeNull();
    expect(budget.used).toBe(3);
    expect(budget.remaining()).toBe(1);
  });

  it("refuses (null) when nothing outstanding can ever free enough, and caps a reservation at the whole budget", async () => {
    const budget = new Budget("subrequest", 10);
    budget.take(8);
    expect(await budget.reserve(5)).toBeNull();
    const whole = new Budget("subrequest", 10);
    const big = await whole.reserve(50);
    expect(big).not.toBeNull();
    big?.take(10);
    expect(() => big?.take(1)).toThrow(expect.objectContaining({ code: "budget_exhausted" }));
  });
});

describe("a shared limiter", () => {
  it("keeps at most its limit in flight across callers that join late, and runs every call", async () => {
    const run = createLimiter(3);
    let inFlight = 0;
    let most = 0;
    const task = (ms: number) =>
      run(async () => {
        inFlight++;
        most = Math.max(most, inFlight);
        await new Promise((resolve) => setTimeout(resolve, ms));
        inFlight--;
        return ms;
      });
    const early = [5, 10, 15, 20].map(task);
    await new Promise((resolve) => setTimeout(resolve, 7));
    const late = [1, 2, 3, 4, 5].map(task);
    expect(await Promise.all([...early, ...late])).toEqual([5, 10, 15, 20, 1, 2, 3, 4, 5]);
    expect(most).toBe(3);
    expect(inFlight).toBe(0);
  });

  it("frees the slot when a call fails", async () => {
    const run = createLimiter(1);
    await expect(run(() => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(await run(async () => "next")).toBe("next");
  });
});
