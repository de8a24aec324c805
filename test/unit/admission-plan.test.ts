import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { PRIORITY_WEIGHTS } from "../../src/config";
import { type AdmissionCandidate, admissionOrder, allocateAdmissions } from "../../src/warm/admission-plan";

const job = (
  jobId: string,
  priority: string,
  over: Partial<AdmissionCandidate> = {},
): AdmissionCandidate => ({
  jobId,
  priority,
  inFlight: 0,
  pending: 1000,
  createdAt: 0,
  ...over,
});

describe("admission plan: priority-weighted round robin", () => {
  it("uses the shared weights high 4, normal 2, low 1", () => {
    expect(PRIORITY_WEIGHTS).toEqual({ high: 4, normal: 2, low: 1 });
  });

  it("interleaves high, normal and low 4 : 2 : 1 from a standing start", () => {
    const jobs = [job("L", "low"), job("N", "normal"), job("H", "high")];
    expect(admissionOrder(jobs, { window: 100, globalCap: 7 })).toEqual(["H", "H", "N", "H", "H", "N", "L"]);
    expect(admissionOrder(jobs, { window: 100, globalCap: 14 }).filter((j) => j === "H")).toHaveLength(8);
  });

  it("gives a freed slot to the job furthest below its weighted share", () => {
    // The normal job holds 40 of 60 slots, the new high job none: every free slot goes to the high job
    // until it holds its 4:2 share.
    const jobs = [job("old", "normal", { inFlight: 40 }), job("new", "high", { inFlight: 0, createdAt: 5 })];
    expect(admissionOrder(jobs, { window: 100, globalCap: 50 })).toEqual(Array(10).fill("new"));
    const balanced = [job("old", "normal", { inFlight: 20 }), job("new", "high", { inFlight: 40 })];
    expect(admissionOrder(balanced, { window: 100, globalCap: 63 })).toEqual(["new", "new", "old"]);
  });

  it("two equal jobs alternate, the older first", () => {
    const jobs = [job("b", "normal", { createdAt: 2 }), job("a", "normal", { createdAt: 1 })];
    expect(admissionOrder(jobs, { window: 100, globalCap: 4 })).toEqual(["a", "b", "a", "b"]);
  });

  it("never fills a job past its window nor past what it has pending", () => {
    const jobs = [job("H", "high", { inFlight: 8 }), job("N", "normal", { pending: 1 })];
    expect(allocateAdmissions(jobs, { window: 10, globalCap: 1000 })).toEqual([
      { jobId: "N", count: 1 },
      { jobId: "H", count: 2 },
    ]);
  });

  it("admits nothing when the global cap is reached", () => {
    const jobs = [job("A", "normal", { inFlight: 30 }), job("B", "high", { inFlight: 20 })];
    expect(admissionOrder(jobs, { window: 100, globalCap: 50 })).toEqual([]);
  });

  it("holds the bounds for any jobs (property)", () => {
    const candidate = fc.record({
      jobId: fc.uuid(),
      priority: fc.constantFrom("low", "normal", "high"),
      inFlight: fc.nat(120),
      pending: fc.nat(300),
      createdAt: fc.nat(1000),
    });
    fc.assert(
      fc.property(
        fc.uniqueArray(candidate, { selector: (c) => c.jobId, maxLength: 8 }),
        fc.integer({ min: 1, max: 100 }),
        fc.integer({ min: 1, max: 600 }),
        (jobs, window, globalCap) => {
          const grants = allocateAdmissions(jobs, { window, globalCap });
          const held = jobs.reduce((s, j) => s + j.inFlight, 0);
          const given = grants.reduce((s, g) => s + g.count, 0);
          expect(given).toBeLessThanOrEqual(Math.max(0, globalCap - held));
          for (const g of grants) {
            const j = jobs.find((c) => c.jobId === g.jobId);
            expect(j).toBeDefined();
            if (!j) continue;
            expect(g.count).toBeGreaterThan(0);
            expect(j.inFlight + g.count).toBeLessThanOrEqual(window);
            expect(g.count).toBeLessThanOrEqual(j.pending);
          }
          // Work conserving: a slot is left free only when no job could take it.
          const roomLeft = jobs.some((j) => {
            const got = grants.find((g) => g.jobId === j.jobId)?.count ?? 0;
            return got < Math.min(window - j.inFlight, j.pending);
          });
          if (roomLeft) expect(given).toBe(Math.max(0, globalCap - held));
        },
      ),
    );
  });

  it("shares a contended cap in proportion to the weights, whatever the order given", () => {
    fc.assert(
      fc.property(fc.shuffledSubarray(["H", "N", "L"], { minLength: 3, maxLength: 3 }), (ids) => {
        const priority = { H: "high", N: "normal", L: "low" } as Record<string, string>;
        const jobs = ids.map((id) => job(id, priority[id] ?? "normal"));
        const grants = Object.fromEntries(
          allocateAdmissions(jobs, { window: 1000, globalCap: 70 }).map((g) => [g.jobId, g.count]),
        );
        expect(grants).toEqual({ H: 40, N: 20, L: 10 });
      }),
    );
  });
});
