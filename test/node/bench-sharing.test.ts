import { describe, expect, it } from "vitest";
import { type Arrival, requestsOf, type SharingResult } from "../../scripts/bench/sharing.ts";
import { sharingChecks } from "../../scripts/bench/sharing-report.ts";

describe("bench sharing: per-job attribution of upstream requests", () => {
  const arrivals: Arrival[] = [
    { at: 1000, byPrefix: { A: 10, B: 0 } },
    { at: 2000, byPrefix: { A: 6, B: 4 } },
    { at: 3000, byPrefix: { A: 0, B: 10 } },
    { at: 4000, byPrefix: { A: 0, B: 0 } }, // names neither job: nobody's
  ];

  it("splits a grouped request by the authors each job has in it", () => {
    expect(requestsOf(arrivals, "A")).toBeCloseTo(1.6);
    expect(requestsOf(arrivals, "B")).toBeCloseTo(1.4);
  });

  it("counts only the requests inside the window", () => {
    expect(requestsOf(arrivals, "A", 1500, 3500)).toBeCloseTo(0.6);
    expect(requestsOf(arrivals, "B", 1500, 3500)).toBeCloseTo(1.4);
  });
});

describe("bench sharing: targets", () => {
  const polite = { requests: 10, maxInAnyOneSecond: 1, responses429: 0 };
  const job = (secondsToComplete: number, secondsToFirstRequest: number | null) => ({
    label: "x",
    authors: 20,
    priority: "high",
    status: "completed",
    secondsToComplete,
    secondsToFirstRequest,
    requests: 2,
  });

  it("misses fairness when the second job never ran beside the first", () => {
    const r: SharingResult = {
      generatedAt: "2026-12-02T00:00:00Z",
      note: "",
      errors: [],
      fairness: {
        rate: 1,
        jobs: [job(90, 0.5), job(180, 88)],
        secondStartSeconds: 88,
        window: { seconds: 88, requests: 50, shares: [1, 0] },
        politeness: polite,
      },
    };
    const checks = sharingChecks(r);
    expect(checks.filter((c) => !c.ok).map((c) => c.text)).toEqual([
      "fairness: second job's first request 88 s after its upload ≤ 5 s",
      "fairness: shares while both ran 100.0 % / 0.0 % within 40–60 %",
    ]);
  });

  it("meets priority within 2× and flags a second above R", () => {
    const r: SharingResult = {
      generatedAt: "2026-12-02T00:00:00Z",
      note: "",
      errors: [],
      priority: {
        rate: 1,
        standalone: job(3, 0.5),
        withBig: { big: job(300, 0.5), small: job(5, 1) },
        ratio: 1.67,
        politeness: { standalone: polite, withBig: { ...polite, maxInAnyOneSecond: 2 } },
      },
    };
    const failed = sharingChecks(r).filter((c) => !c.ok);
    expect(failed.map((c) => c.text)).toEqual(["priority (with big): most requests in any 1 s 2 ≤ R = 1"]);
  });
});
