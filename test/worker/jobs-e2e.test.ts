import { beforeEach, describe, expect, it } from "vitest";
import goodreads2025 from "../fixtures/goodreads-2025.csv?raw";
import { jobRow, resetAll, taskCounts } from "../support/db";
import { uploadCsv, waitForJob } from "../support/http";

describe("upload → queue → consumer → completed job", () => {
  beforeEach(resetAll);

  it("warms every author of a small export and the counts add up", async () => {
    const csv =
      "Title,Author\nThe Silk Roads,Peter Frankopan\nSapiens,Yuval Noah Harari\nOther,peter  frankopan\n";
    const response = await uploadCsv(csv, "?maxDepth=1");
    expect(response.status).toBe(202);
    const body = (await response.json()) as {
      jobId: string;
      authorsQueued: number;
      duplicatesSkipped: number;
    };
    expect(body.authorsQueued).toBe(2);
    expect(body.duplicatesSkipped).toBe(1);
    const progress = await waitForJob(body.jobId);
    expect(progress.status).toBe("completed");
    const counts = await taskCounts(body.jobId);
    const job = await jobRow(body.jobId);
    expect(job).not.toBeNull();
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    expect(total).toBe(job?.total_tasks);
    expect((counts.done ?? 0) + (counts.skipped ?? 0)).toBe(total);
    expect(job?.done_count).toBe(counts.done ?? 0);
    expect(job?.works_cached).toBeGreaterThan(0);
  });

  it("completes the real Goodreads export", async () => {
    const response = await uploadCsv(goodreads2025, "?maxDepth=0");
    expect(response.status).toBe(202);
    const { jobId } = (await response.json()) as { jobId: string };
    // 488 authors and 302 ISBN items; local KV serialises its writes (~1.4 ms each), so this takes a while.
    const progress = (await waitForJob(jobId, 170_000)) as { status: string; counts: Record<string, number> };
    expect(progress.status).toBe("completed");
    expect(progress.counts.done).toBe(progress.counts.total);
    expect(progress.counts.total).toBe(488 + 302);
  }, 180_000);
});
