import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { resetAll } from "../support/db";
import { call, TOKEN, uploadCsv, waitForJob } from "../support/http";
import { auditJob } from "../support/instrumented/audit";
import { counters, modes, resetCounters } from "../support/instrumented/counters";
import { upstream } from "../support/upstream";
import { alwaysFails, CHAOS_FAULTS, NO_FAULTS } from "../support/upstream/chaos-profile.ts";

describe("chaos soak (short variant of npm run chaos)", () => {
  beforeEach(async () => {
    await resetAll();
    resetCounters();
  });
  afterEach(() => {
    Object.assign(modes, { crashRate: 0, duplicateDelivery: false });
    upstream.configure(NO_FAULTS);
  });

  it("300 authors, maxDepth 2, faults + crashes + every message twice: nothing lost, nothing counted twice, redrive brings the rest home", async () => {
    const authors = Array.from({ length: 300 }, (_, i) => `Chaos Author ${String(i).padStart(3, "0")}`);
    expect(authors.some(alwaysFails)).toBe(true);
    upstream.configure(CHAOS_FAULTS);
    Object.assign(modes, { crashRate: 0.02, duplicateDelivery: true });

    const csv = `Title,Author\n${authors.map((a, i) => `Book ${i},${a}`).join("\n")}\n`;
    const response = await uploadCsv(csv, "?maxDepth=2");
    expect(response.status).toBe(202);
    const { jobId } = (await response.json()) as { jobId: string };
    const finished = (await waitForJob(jobId, 240_000).catch(async (error) => {
      // Name the stuck tasks, so a failure here says what was lost.
      const stuck = await env.DB.prepare(
        "SELECT author_key, status, attempts, failures, generation, error, depth, updated_at FROM tasks WHERE job_id = ?1 AND status IN ('pending', 'queued', 'running')",
      )
        .bind(jobId)
        .all();
      throw new Error(`${String(error)}\nstuck tasks: ${JSON.stringify(stuck.results)} now=${Date.now()}`);
    })) as { status: string };

    const audit = await auditJob(env, jobId, { offset: 0, limit: 10_000 });
    // Every task terminal, counts add up, counters agree with the rows.
    const open =
      (audit.taskCounts.pending ?? 0) + (audit.taskCounts.queued ?? 0) + (audit.taskCounts.running ?? 0);
    expect(open).toBe(0);
    expect(Object.values(audit.taskCounts).reduce((a, b) => a + b, 0)).toBe(audit.tasks.length);
    expect(audit.counterMismatches).toEqual([]);
    // The dead/failed set is exactly the always-failing authors.
    const lost = audit.tasks
      .filter((t) => t.status === "dead" || t.status === "failed")
      .map((t) => t.authorKey);
    const expected = audit.tasks.filter((t) => alwaysFails(t.authorName)).map((t) => t.authorKey);
    expect(lost.sort()).toEqual(expected.sort());
    expect(expected.length).toBeGreaterThan(0);
    expect(finished.status).toBe("completed_with_errors");
    // Every done author has its works in KV and D1 and its processed marker.
    expect(audit.incompleteDone).toEqual([]);
    expect(audit.doneChecked).toBe(audit.doneTotal);
    // The chaos really happened.
    expect(counters.crashes).toBeGreaterThan(0);
    expect(counters.consumerMessages).toBeGreaterThan(audit.tasks.length * 2);

    // The faults stop; a redrive brings the transient failures home.
    upstream.configure(NO_FAULTS);
    Object.assign(modes, { crashRate: 0, duplicateDelivery: false });
    const redrive = await call(`/api/jobs/${jobId}/retry`, {
      method: "POST",
      headers: { Authorization: `Bearer ${TOKEN}` },
    });
    expect(redrive.status).toBe(202);
    const after = (await waitForJob(jobId, 120_000)) as { status: string; counts: Record<string, number> };
    expect(after.status).toBe("completed");
    const final = await auditJob(env, jobId, { offset: 0, limit: 10_000 });
    expect(final.taskCounts).toEqual({ done: final.tasks.length });
    expect(final.counterMismatches).toEqual([]);
    expect(final.incompleteDone).toEqual([]);
  }, 400_000);
});
