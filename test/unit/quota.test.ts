import { describe, expect, it } from "vitest";
import { exhaustQuota, nextMidnight, quotaDay, quotaStatus, takeQuota } from "../../src/sources/quota";

const LA = "America/Los_Angeles";
const policy = { limit: 2, timeZone: LA };

describe("a provider's quota day", () => {
  it("ends at midnight Pacific time: 08:00 UTC in winter (PST), 07:00 UTC in summer (PDT)", () => {
    expect(new Date(nextMidnight(Date.parse("2026-01-15T20:00:00Z"), LA)).toISOString()).toBe(
      "2026-01-16T08:00:00.000Z",
    );
    expect(new Date(nextMidnight(Date.parse("2026-07-15T20:00:00Z"), LA)).toISOString()).toBe(
      "2026-07-16T07:00:00.000Z",
    );
    // 03:00 UTC on 16 July is still the 15th in Los Angeles.
    expect(quotaDay(Date.parse("2026-07-16T03:00:00Z"), LA)).toBe("2026-07-15");
  });

  it("is right across DST changes (the day clocks spring forward and fall back)", () => {
    // 8 March 2026: PST → PDT at 02:00; the next midnight (9 March) is at 07:00 UTC.
    expect(new Date(nextMidnight(Date.parse("2026-03-08T09:00:00Z"), LA)).toISOString()).toBe(
      "2026-03-09T07:00:00.000Z",
    );
    // 1 November 2026: PDT → PST; the next midnight (2 November) is at 08:00 UTC.
    expect(new Date(nextMidnight(Date.parse("2026-11-01T08:30:00Z"), LA)).toISOString()).toBe(
      "2026-11-02T08:00:00.000Z",
    );
    expect(new Date(nextMidnight(Date.parse("2026-11-01T12:00:00Z"), "UTC")).toISOString()).toBe(
      "2026-11-02T00:00:00.000Z",
    );
  });
});

describe("takeQuota", () => {
  it("grants up to the limit, refuses past it, and starts again from zero the next quota day", () => {
    const t = Date.parse("2026-01-15T20:00:00Z");
    const a = takeQuota(null, policy, t);
    const b = takeQuota(a.state, policy, t + 1000);
    const c = takeQuota(b.state, policy, t + 2000);
    expect([a.granted, b.granted, c.granted]).toEqual([true, true, false]);
    expect(c.used).toBe(2);
    expect(c.resetAt).toBe(Date.parse("2026-01-16T08:00:00Z"));
    const nextDay = takeQuota(c.state, policy, Date.parse("2026-01-16T08:00:01Z"));
    expect(nextDay).toMatchObject({ granted: true, used: 1 });
  });

  it("refuses while the provider has said the quota is spent, until that quota day is over", () => {
    const t = Date.parse("2026-07-15T20:00:00Z");
    const spent = exhaustQuota(null, { limit: 0, timeZone: LA }, t);
    expect(spent.exhaustedUntil).toBe(Date.parse("2026-07-16T07:00:00Z"));
    expect(takeQuota(spent, { limit: 0, timeZone: LA }, t + 60_000).granted).toBe(false);
    expect(quotaStatus(spent, { limit: 0, timeZone: LA }, t)).toMatchObject({ exhausted: true, limit: null });
    expect(takeQuota(spent, { limit: 0, timeZone: LA }, Date.parse("2026-07-16T07:00:01Z")).granted).toBe(
      true,
    );
  });

  it("is unlimited with limit 0", () => {
    let state = null as ReturnType<typeof takeQuota>["state"] | null;
    for (let i = 0; i < 5000; i++) {
      const grant = takeQuota(state, { limit: 0, timeZone: "UTC" }, 1_800_000_000_000 + i);
      expect(grant.granted).toBe(true);
      state = grant.state;
    }
  });
});
