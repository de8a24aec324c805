import { introspectWorkflow } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { jobRow, resetAll, taskCounts } from "../support/db";
import { call, TOKEN, uploadCsv } from "../support/http";
import { authorsCsv, control, logLines, stageRows } from "../support/lifecycle";
import { upstream } from "../support/upstream";

/** Every upstream request the isolate makes, with when it started (the consumer looks `fetch` up per call). */
const seen: { at: number; url: string }[] = [];
const original = globalThis.fetch;

function recordRequests(): void {
  seen.length = 0;
  globalThis.fetch = ((input: RequestInfo | URL, init?: RequestInit) => {
    seen.push({ at: Date.now(), url: input instanceof Request ? input.url : String(input) });
    return original(input, init);
  }) as typeof fetch;
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const doneAtLeast = (jobId: string, n: number) => async () => ((await jobRow(jobId))?.done_count ?? 0) >= n;

async function exactCounters(jobId: string) {
  const counts = await taskCounts(jobId);
  const job = await jobRow(jobId);
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  expect(total).toBe(job?.total_tasks);
  expect(job?.done_count).toBe(counts.done ?? 0);
  expect(job?.skipped_count).toBe(counts.skipped ?? 0);
  expect(job?.failed_count).toBe(counts.failed ?? 0);
  expect(job?.dead_count).toBe(counts.dead ?? 0);
  expect(job?.cancelled_count).toBe(counts.cancelled ?? 0);
  return counts;
}

/** Authors of the cancel and pause tests' jobs: 20 grouped batches, far more than a pause or cancel catches in flight. */
const PAUSED_AUTHORS = 200;

describe("cancel, pause and resume (admin routes)", () => {
  beforeEach(async () => {
    await resetAll();
    recordRequests();
    // Slow providers, so the job is still warming when the test acts on it.
    upstream.configure({ latencyMs: 150 });
  });
  afterEach(() => {
    globalThis.fetch = original;
  });

  it("cancel: open tasks end cancelled, counters exact, instance terminated, no upstream request after 5 s; repeat harmless", async () => {
    const introspector = await introspectWorkflow(env.JOB_WORKFLOW);
    try {
      // As for pause: enough authors that the cancel finds open tasks past the batches already in flight.
      const { jobId } = (await (await uploadCsv(authorsCsv(PAUSED_AUTHORS), "?maxDepth=0")).json()) as {
        jobId: string;
      };
      await waitFor("some tasks done", doneAtLeast(jobId, 3));
      const response = await control(jobId, "cancel");
      const cancelledAt = Date.now();
      expect(response.status).toBe(200);
      const body = (await response.json()) as {
        status: string;
        stage: unknown;
        counts: Record<string, number>;
      };
      expect(body.status).toBe("cancelled");
      expect(body.counts.cancelled).toBeGreaterThan(0);
      const [instance] = await introspector.get();
      await instance?.waitForStatus("terminated");
      expect((await stageRows(jobId)).map((r) => `${r.stage}:${r.status}`)).toEqual([
        "ingest:SUCCESS",
        "warm:CANCELLED",
        "verify:SKIPPED",
        "publish:SKIPPED",
      ]);
      // Wait past the 5 s promise, then look at what the stand-in was asked.
      await new Promise((r) => setTimeout(r, 5_000 - (Date.now() - cancelledAt)));
      const answeredAtFive = upstream.stats().total;
      await new Promise((r) => setTimeout(r, 1_500));
      expect(upstream.stats().total).toBe(answeredAtFive);
      expect(seen.filter((s) => s.at > cancelledAt + 5_000)).toEqual([]);
      const counts = await exactCounters(jobId);
      expect((counts.pending ?? 0) + (counts.queued ?? 0) + (counts.running ?? 0)).toBe(0);
      const before = await jobRow(jobId);
      // Repeating it is harmless: same answer, nothing moves.
      expect((await control(jobId, "cancel")).status).toBe(200);
      expect(await jobRow(jobId)).toMatchObject({
        cancelled_count: before?.cancelled_count,
        done_count: before?.done_count,
      });
      const operator = (await logLines(jobId)).filter((l) => l.type === "operator").map((l) => l.action);
      expect(operator).toEqual(["created", "cancel", "cancel"]);
      // The cancel wrote a manifest that says so.
      const manifest = await call(`/api/jobs/${jobId}/manifest`, {
        headers: { Authorization: `Bearer ${TOKEN}` },
      });
      expect(manifest.status).toBe(200);
      const parsed = (await manifest.json()) as { jobStatus: string; stages: { status: string }[] };
      expect(parsed.jobStatus).toBe("cancelled");
      expect(parsed.stages.map((s) => s.status)).toEqual(["SUCCESS", "CANCELLED", "SKIPPED", "SKIPPED"]);
    } finally {
      await introspector.dispose();
    }
  }, 60_000);

  it("a finished job: cancel, pause and resume answer 409", async () => {
    upstream.configure({ latencyMs: 0 });
    const introspector = await introspectWorkflow(env.JOB_WORKFLOW);
    try {
      const { jobId } = (await (await uploadCsv(authorsCsv(2), "?maxDepth=0")).json()) as { jobId: string };
      const [instance] = await introspector.get();
      await instance?.waitForStatus("complete");
      for (const action of ["cancel", "pause", "resume"]) {
        const response = await control(jobId, action);
        expect(response.status).toBe(409);
        expect(await response.json()).toMatchObject({ error: { code: "job_finished" } });
      }
      expect((await control(crypto.randomUUID(), "cancel")).status).toBe(404);
    } finally {
      await introspector.dispose();
    }
  });

  it("pause parks the job (no upstream request, nothing failed); resume finishes it with nothing repeated", async () => {
    const introspector = await introspectWorkflow(env.JOB_WORKFLOW);
    try {
      // Enough authors that the pause finds work left: a batch already past the job-state check finishes
      // (10 authors a grouped request), so 40 could all be done by then.
      const { jobId } = (await (await uploadCsv(authorsCsv(PAUSED_AUTHORS), "?maxDepth=0")).json()) as {
        jobId: string;
      };
      await waitFor("some tasks done", doneAtLeast(jobId, 3));
      const paused = await control(jobId, "pause");
      const pausedAt = Date.now();
      expect(paused.status).toBe(200);
      expect(((await paused.json()) as { status: string }).status).toBe("paused");
      // In-flight batches finish; after that the paused job is still.
      await new Promise((r) => setTimeout(r, 4_000));
      const resumedAt = Date.now();
      expect(seen.filter((s) => s.at > pausedAt + 2_500 && s.at < resumedAt)).toEqual([]);
      const during = await exactCounters(jobId);
      expect((during.failed ?? 0) + (during.dead ?? 0) + (during.cancelled ?? 0)).toBe(0);
      expect((during.pending ?? 0) + (during.queued ?? 0) + (during.running ?? 0)).toBeGreaterThan(0);
      expect((await jobRow(jobId))?.status).toBe("paused");
      const resumed = await control(jobId, "resume");
      expect(resumed.status).toBe(200);
      const [instance] = await introspector.get();
      await instance?.waitForStatus("complete");
      const counts = await exactCounters(jobId);
      expect(counts.done).toBe(PAUSED_AUTHORS);
      expect((await jobRow(jobId))?.status).toBe("completed");
      // Nothing repeated: no upstream URL was asked twice (each author's queries are its own).
      const urls = seen.map((s) => s.url);
      expect(urls.length).toBeGreaterThan(0);
      expect(new Set(urls).size).toBe(urls.length);
      expect((await logLines(jobId)).filter((l) => l.type === "operator").map((l) => l.action)).toEqual([
        "created",
        "pause",
        "resume",
      ]);
    } finally {
      await introspector.dispose();
    }
  }, 60_000);
});
