import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config";
import { readBacklog } from "../../src/db/backlog";
import { completeJobsStatement, createUploadJobStatement } from "../../src/db/jobs";
import { stopJob } from "../../src/db/lifecycle/stop-job";
import { runSteps } from "../../src/db/step";
import { insertRootSlice } from "../../src/db/tasks";
import { parseLibraryExport } from "../../src/ingest/csv";
import { readExport } from "../../src/ingest/read-export";
import { artifactKey, sha256Hex } from "../../src/jobs/artifacts";
import { INPUT_NAME, runIngest } from "../../src/jobs/ingest-stage";
import { lifecycleStatements } from "../../src/jobs/lifecycle";
import { rootTasksOf } from "../../src/jobs/root-tasks";
import { admissionWindows } from "../../src/warm/admission";
import goodreads2025 from "../fixtures/goodreads-2025.csv?raw";
import { jobRow, resetAll, taskCounts } from "../support/db";
import { waitForJob } from "../support/http";
import { uploadWatched } from "../support/lifecycle";

const config = loadConfig(env);
const OPTIONS = { maxDepth: 0, priority: "normal" as const };

/**
 * A job as the upload leaves it (no Workflow started, so the test runs ingest itself): the file in R2, the job
 * row with `root_tasks` from the parse and `total_tasks` 0, the stage rows; no task row.
 */
async function acceptedJob(csv: string): Promise<{ jobId: string; roots: number }> {
  const bytes = new TextEncoder().encode(csv);
  const read = await readExport(
    {
      chunks: (async function* () {
        yield bytes;
      })(),
      meta: () => ({ options: OPTIONS, filename: "library.csv" }),
    },
    {},
  );
  const jobId = crypto.randomUUID();
  const sha = await sha256Hex(bytes);
  await env.ARTIFACTS.put(artifactKey(jobId, INPUT_NAME), bytes);
  const roots = read.parsed.authors.length + read.parsed.isbns.length;
  const now = Date.now();
  await env.DB.batch([
    createUploadJobStatement(
      env.DB,
      {
        id: jobId,
        ...OPTIONS,
        format: read.parsed.format,
        filename: "library.csv",
        idempotencyKey: null,
        requestHash: read.requestHash,
        rowsTotal: read.parsed.rows,
        duplicatesSkipped: read.parsed.duplicatesSkipped,
        now,
      },
      roots,
    ),
    ...lifecycleStatements(env.DB, jobId, sha, now),
  ]);
  return { jobId, roots };
}

async function ingest(jobId: string) {
  const job = await jobRow(jobId);
  if (!job) throw new Error(`job ${jobId} is missing`);
  return runIngest(env, job, config);
}

/** The job's tasks per kind, among those the condition picks. */
async function kindCounts(jobId: string, where: string): Promise<{ author: number; isbn: number }> {
  const { results } = await env.DB.prepare(
    `SELECT kind, COUNT(*) AS n FROM tasks WHERE job_id = ?1 AND ${where} GROUP BY kind`,
  )
    .bind(jobId)
    .all<{ kind: "author" | "isbn"; n: number }>();
  const by = Object.fromEntries(results.map((r) => [r.kind, r.n]));
  return { author: by.author ?? 0, isbn: by.isbn ?? 0 };
}
const rootRows = (jobId: string) => kindCounts(jobId, "depth = 0");

describe("ingest writes an upload's depth-0 tasks after the 202", () => {
  beforeEach(resetAll);

  it("the upload writes the job row only; ingest writes every author and ISBN item, once, and plans them", async () => {
    const { jobId, roots } = await acceptedJob(goodreads2025);
    // What the upload leaves: the planned count, no task rows, a total of 0.
    expect(await jobRow(jobId)).toMatchObject({ root_tasks: roots, total_tasks: 0, roots_written: 0 });
    expect(await rootRows(jobId)).toEqual({ author: 0, isbn: 0 });

    const end = await ingest(jobId);
    expect(end).toMatchObject({ status: "SUCCESS", counts: { items: roots } });
    // The bundled export: 488 authors and 302 ISBN items (README).
    expect(await rootRows(jobId)).toEqual({ author: 488, isbn: 302 });
    expect(roots).toBe(790);
    expect(await jobRow(jobId)).toMatchObject({ root_tasks: 790, total_tasks: 790, roots_written: 1 });
    // The first window of each kind went out as soon as the tasks were written.
    const counts = await taskCounts(jobId);
    const windows = admissionWindows(config);
    expect(await kindCounts(jobId, "status = 'queued'")).toEqual({
      author: Math.min(windows.author, 488),
      isbn: Math.min(windows.isbn, 302),
    });
    expect(counts.pending).toBe(790 - (counts.queued ?? 0));

    // A retried step (the same job row as the first try saw it) writes nothing twice.
    const stale = await jobRow(jobId);
    if (!stale) throw new Error("job vanished");
    await runIngest(env, { ...stale, roots_written: 0 }, config);
    expect(await rootRows(jobId)).toEqual({ author: 488, isbn: 302 });
    expect(await jobRow(jobId)).toMatchObject({ total_tasks: 790 });
  });

  it("a job cancelled before its ingest gets no tasks, keeps counters equal to its rows and stops the run", async () => {
    const { jobId } = await acceptedJob("Title,Author\nSapiens,Yuval Noah Harari\nSPQR,Mary Beard\n");
    await runSteps(env.DB, [stopJob(env.DB, jobId, "cancelled", Date.now())]);
    expect(await ingest(jobId)).toBeNull();
    expect(await rootRows(jobId)).toEqual({ author: 0, isbn: 0 });
    expect(await jobRow(jobId)).toMatchObject({ status: "cancelled", total_tasks: 0, cancelled_count: 0 });
  });

  it("a stored upload that changed since its 202 fails ingest naming the check, and writes nothing", async () => {
    const { jobId } = await acceptedJob("Title,Author\nSapiens,Yuval Noah Harari\nSPQR,Mary Beard\n");
    await env.ARTIFACTS.put(
      artifactKey(jobId, INPUT_NAME),
      "Title,Author\nSapiens,Yuval Noah Harari\nSPQR,Mary Beard\nDune,Frank Herbert\n",
    );
    const end = await ingest(jobId);
    expect(end).toMatchObject({ status: "FAILED" });
    expect(end?.message).toMatch(/^input_checksum:/);
    expect(await rootRows(jobId)).toEqual({ author: 0, isbn: 0 });
  });

  it("a slice written before a crash: the job cannot complete on it, and the rerun writes the rest exactly once", async () => {
    const { jobId } = await acceptedJob(goodreads2025);
    const roots = rootTasksOf(parseLibraryExport(goodreads2025));
    await runSteps(env.DB, [
      insertRootSlice(env.DB, jobId, roots.slice(0, 300), { now: Date.now(), last: false }),
    ]);
    expect(await jobRow(jobId)).toMatchObject({ total_tasks: 300, roots_written: 0 });
    // Every task written so far finished: a sweep must still not complete the job.
    await env.DB.batch([
      env.DB.prepare("UPDATE tasks SET status = 'done' WHERE job_id = ?1").bind(jobId),
      env.DB.prepare("UPDATE jobs SET done_count = 300 WHERE id = ?1").bind(jobId),
      completeJobsStatement(env.DB, [jobId], Date.now()),
    ]);
    expect(await jobRow(jobId)).toMatchObject({ status: "queued" });
    expect((await readBacklog(env.DB, null)).openTasks).toBe(790 - 300);

    expect(await ingest(jobId)).toMatchObject({ status: "SUCCESS" });
    expect(await rootRows(jobId)).toEqual({ author: 488, isbn: 302 });
    expect(await jobRow(jobId)).toMatchObject({ total_tasks: 790, roots_written: 1, done_count: 300 });
    expect((await taskCounts(jobId)).done).toBe(300);
  });

  it("a job cancelled while ingest writes keeps the rows it had, all cancelled, and gets no more", async () => {
    const { jobId } = await acceptedJob(goodreads2025);
    const roots = rootTasksOf(parseLibraryExport(goodreads2025));
    await runSteps(env.DB, [
      insertRootSlice(env.DB, jobId, roots.slice(0, 300), { now: Date.now(), last: false }),
    ]);
    await runSteps(env.DB, [stopJob(env.DB, jobId, "cancelled", Date.now())]);
    expect(await ingest(jobId)).toBeNull();
    expect(await taskCounts(jobId)).toEqual({ cancelled: 300 });
    expect(await jobRow(jobId)).toMatchObject({ total_tasks: 300, cancelled_count: 300, roots_written: 0 });
  });

  it("end to end: the tasks are created inside the ingest stage, and the job completes", async () => {
    const { jobId, instance, dispose } = await uploadWatched(
      'Title,Author,ISBN13\nSapiens,Yuval Noah Harari,="9780062316097"\nSPQR,Mary Beard,\n',
    );
    try {
      await instance.waitForStatus("complete");
    } finally {
      await dispose();
    }
    expect((await waitForJob(jobId)).status).toBe("completed");
    const { results } = await env.DB.prepare(
      `SELECT MIN(t.created_at) AS first_task, s.started_at AS ingest_started
         FROM tasks AS t JOIN job_stages AS s ON s.job_id = t.job_id AND s.stage = 'ingest'
        WHERE t.job_id = ?1 AND t.depth = 0`,
    )
      .bind(jobId)
      .all<{ first_task: number; ingest_started: number }>();
    const row = results[0];
    // Written by the stage, not before the 202 (which precedes the stage's start).
    expect(row?.first_task).toBeGreaterThanOrEqual(row?.ingest_started ?? Number.POSITIVE_INFINITY);
    expect(await rootRows(jobId)).toEqual({ author: 2, isbn: 1 });
  });
});
