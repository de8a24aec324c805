import {
  createExecutionContext,
  createMessageBatch,
  getQueueResult,
  waitOnExecutionContext,
} from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { createApp } from "../../src/api/app";
import { loadConfig } from "../../src/config";
import { runIngest } from "../../src/jobs/ingest-stage";
import { admissionLimits, admitPending } from "../../src/warm/admission";
import { handleWarmBatch } from "../../src/warm/consumer";
import type { WarmMessage } from "../../src/warm/messages";
import { jobRow, resetAll, taskCounts } from "../support/db";
import { TOKEN } from "../support/http";
import { queueMessage, seedJob, warmDeps } from "../support/jobs";
import { hasCoAuthors } from "../support/upstream/catalogue.ts";

const QUEUE = "author-warming-queue";

/** A queue that only records what would have been sent (nothing reaches the real queue). */
function recordingQueue() {
  const sent: WarmMessage[] = [];
  let calls = 0;
  const queue = {
    send: async (body: WarmMessage) => {
      calls++;
      sent.push(body);
    },
    sendBatch: async (messages: Iterable<MessageSendRequest<WarmMessage>>) => {
      calls++;
      for (const m of messages) sent.push(m.body);
    },
  } as unknown as Queue;
  return { queue, sent, calls: () => calls };
}

function configWith(vars: Record<string, string>) {
  return loadConfig({ ...env, ...vars });
}

describe("admission window size", () => {
  const windowAt = (vars: Record<string, string>) =>
    admissionLimits(loadConfig({ OPENLIBRARY_AUTHORS_PER_REQUEST: "10", ...vars }), "author").window;

  it("follows Open Library's rate: the lookahead's grouped requests, within 20..100", () => {
    expect(windowAt({ OPENLIBRARY_RATE_PER_SECOND: "1" })).toBe(20);
    expect(windowAt({ OPENLIBRARY_RATE_PER_SECOND: "3" })).toBe(60);
    expect(windowAt({ OPENLIBRARY_RATE_PER_SECOND: "3", ADMISSION_LOOKAHEAD_SECONDS: "3" })).toBe(90);
    expect(windowAt({ OPENLIBRARY_RATE_PER_SECOND: "50" })).toBe(100);
    expect(windowAt({ OPENLIBRARY_RATE_PER_SECOND: "0" })).toBe(100);
    expect(windowAt({ OPENLIBRARY_RATE_PER_SECOND: "0.2" })).toBe(20);
  });

  it("gives ISBN items a window of their own, from the ISBNs one lookup carries (25)", () => {
    const isbnWindowAt = (vars: Record<string, string>) =>
      admissionLimits(loadConfig({ OPENLIBRARY_ISBNS_PER_REQUEST: "25", ...vars }), "isbn").window;
    expect(isbnWindowAt({ OPENLIBRARY_RATE_PER_SECOND: "1" })).toBe(50);
    expect(isbnWindowAt({ OPENLIBRARY_RATE_PER_SECOND: "3" })).toBe(100);
    expect(isbnWindowAt({ OPENLIBRARY_RATE_PER_SECOND: "0" })).toBe(100);
    expect(isbnWindowAt({ OPENLIBRARY_RATE_PER_SECOND: "1", ADMISSION_WINDOW: "7" })).toBe(7);
  });

  it("an explicit ADMISSION_WINDOW wins", () => {
    expect(windowAt({ OPENLIBRARY_RATE_PER_SECOND: "1", ADMISSION_WINDOW: "250" })).toBe(250);
  });
});

/** A seeded job whose tasks wait for admission (seedJob writes them queued, as a consumer expects). */
async function pendingJob(n: number, priority = "normal", createdAt = Date.now()): Promise<string> {
  const names = Array.from({ length: n }, (_, i) => `Admission Writer ${priority} ${createdAt} ${i}`);
  const { jobId } = await seedJob(names, 0);
  await env.DB.batch([
    env.DB.prepare("UPDATE tasks SET status = 'pending' WHERE job_id = ?1").bind(jobId),
    env.DB.prepare("UPDATE jobs SET priority = ?2, created_at = ?3 WHERE id = ?1").bind(
      jobId,
      priority,
      createdAt,
    ),
  ]);
  return jobId;
}

/** A valid ISBN-13 of the 978 range, numbered. */
function isbn13(n: number): string {
  const body = `978000000${String(n).padStart(3, "0")}`;
  const sum = [...body].reduce((total, digit, i) => total + Number(digit) * (i % 2 === 0 ? 1 : 3), 0);
  return `${body}${(10 - (sum % 10)) % 10}`;
}

async function inFlight(jobId: string): Promise<number> {
  const counts = await taskCounts(jobId);
  return (counts.queued ?? 0) + (counts.running ?? 0);
}

/** Closes n of the job's in-flight tasks, as the consumer would (frees n slots of its window). */
async function finishSome(jobId: string, n: number): Promise<void> {
  await env.DB.prepare(
    `UPDATE tasks SET status = 'done' WHERE job_id = ?1 AND author_key IN
       (SELECT author_key FROM tasks WHERE job_id = ?1 AND status = 'queued' LIMIT ?2)`,
  )
    .bind(jobId, n)
    .run();
}

describe("admission", () => {
  beforeEach(resetAll);

  it("never lets more than the window of a job in flight, and refills it as tasks finish", async () => {
    const jobId = await pendingJob(30);
    const config = configWith({ ADMISSION_WINDOW: "5" });
    const q = recordingQueue();
    const bindings = { ...env, WARM_QUEUE: q.queue, PRIORITY_QUEUE: q.queue };
    expect((await admitPending(bindings, config, Date.now())).admitted).toEqual({ [jobId]: 5 });
    expect(await inFlight(jobId)).toBe(5);
    // A full window admits nothing more.
    expect((await admitPending(bindings, config, Date.now())).sent).toBe(0);
    await finishSome(jobId, 2);
    expect((await admitPending(bindings, config, Date.now())).admitted).toEqual({ [jobId]: 2 });
    expect(await inFlight(jobId)).toBe(5);
    expect(await taskCounts(jobId)).toEqual({ done: 2, queued: 5, pending: 23 });
    // Every message sent is a distinct task that is now queued.
    expect(new Set(q.sent.map((m) => m.authorKey)).size).toBe(7);
  });

  it("concurrent admitters never overfill a window or admit a task twice", async () => {
    const a = await pendingJob(40, "normal", 1);
    const b = await pendingJob(40, "high", 2);
    const config = configWith({ ADMISSION_WINDOW: "7", ADMISSION_GLOBAL_CAP: "12" });
    const q = recordingQueue();
    const bindings = { ...env, WARM_QUEUE: q.queue, PRIORITY_QUEUE: q.queue };
    await Promise.all(Array.from({ length: 6 }, () => admitPending(bindings, config, Date.now())));
    expect(await inFlight(a)).toBeLessThanOrEqual(7);
    expect(await inFlight(b)).toBeLessThanOrEqual(7);
    expect((await inFlight(a)) + (await inFlight(b))).toBe(12);
    const keys = q.sent.map((m) => `${m.jobId}/${m.authorKey}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys).toHaveLength(12);
  });

  it("sends a high job's items to the priority lane, the others to their kind's queue", async () => {
    const normal = await pendingJob(3, "normal", 1);
    const high = await pendingJob(3, "high", 2);
    const authorsQ = recordingQueue();
    const laneQ = recordingQueue();
    const bindings = { ...env, WARM_QUEUE: authorsQ.queue, PRIORITY_QUEUE: laneQ.queue };
    expect((await admitPending(bindings, configWith({}), Date.now())).admitted).toEqual({
      [normal]: 3,
      [high]: 3,
    });
    expect(laneQ.sent.map((m) => [m.jobId, m.lane])).toEqual(Array(3).fill([high, "priority"]));
    expect(authorsQ.sent.map((m) => m.jobId)).toEqual(Array(3).fill(normal));
  });

  it("shares free slots across running jobs by priority-weighted round robin (high 4 : normal 2 : low 1)", async () => {
    const low = await pendingJob(50, "low", 1);
    const normal = await pendingJob(50, "normal", 2);
    const high = await pendingJob(50, "high", 3);
    const config = configWith({ ADMISSION_WINDOW: "100", ADMISSION_GLOBAL_CAP: "14" });
    const q = recordingQueue();
    const bindings = { ...env, WARM_QUEUE: q.queue, PRIORITY_QUEUE: q.queue };
    expect((await admitPending(bindings, config, Date.now())).admitted).toEqual({
      [high]: 8,
      [normal]: 4,
      [low]: 2,
    });
    // The big normal job frees 4 slots, the others none: the slots go to whoever is furthest below its
    // weighted share, not back to the job that freed them.
    await finishSome(normal, 4);
    await finishSome(high, 1);
    // In flight H 7, N 0, L 2: the normal job is furthest below its share, then high; back to 8 : 4 : 2.
    expect((await admitPending(bindings, config, Date.now())).admitted).toEqual({ [normal]: 4, [high]: 1 });
    // A job that arrives while the cap is full gets the next freed slots (up to its weighted share, then
    // the heavier high job: ties go to the heavier job).
    const late = await pendingJob(10, "normal", 4);
    expect((await admitPending(bindings, config, Date.now())).sent).toBe(0);
    await finishSome(high, 3);
    expect((await admitPending(bindings, config, Date.now())).admitted).toEqual({ [late]: 2, [high]: 1 });
  });

  it("authors and ISBN items have a window each: ISBN items in flight never hold the authors back", async () => {
    // Authors named after "isbn:" in key order: with one window for both, the ISBN items would take it all.
    const names = Array.from({ length: 6 }, (_, i) => `Zora Kind Writer ${i}`);
    const isbns = Array.from({ length: 8 }, (_, i) => isbn13(i));
    const { jobId } = await seedJob(names, 0, isbns);
    await env.DB.prepare("UPDATE tasks SET status = 'pending' WHERE job_id = ?1").bind(jobId).run();
    const config = configWith({ ADMISSION_WINDOW: "3" });
    const authorsQ = recordingQueue();
    const isbnQ = recordingQueue();
    const bindings = { ...env, WARM_QUEUE: authorsQ.queue, ISBN_QUEUE: isbnQ.queue };
    expect((await admitPending(bindings, config, Date.now())).admitted).toEqual({ [jobId]: 6 });
    expect(authorsQ.sent).toHaveLength(3);
    expect(isbnQ.sent).toHaveLength(3);
    // The ISBN items stay in flight (a slow batch); two authors finish: two more authors go, no ISBN item.
    await env.DB.prepare(
      `UPDATE tasks SET status = 'done' WHERE job_id = ?1 AND author_key IN
         (SELECT author_key FROM tasks WHERE job_id = ?1 AND status = 'queued' AND kind = 'author' LIMIT 2)`,
    )
      .bind(jobId)
      .run();
    expect((await admitPending(bindings, config, Date.now())).admitted).toEqual({ [jobId]: 2 });
    expect(authorsQ.sent).toHaveLength(5);
    expect(isbnQ.sent).toHaveLength(3);
    expect(await taskCounts(jobId)).toEqual({ done: 2, queued: 6, pending: 6 });
  });

  it("a paused job admits nothing; after resume it is admitted like the rest", async () => {
    const paused = await pendingJob(5, "high", 1);
    const running = await pendingJob(5, "low", 2);
    await env.DB.prepare("UPDATE jobs SET status = 'paused' WHERE id = ?1").bind(paused).run();
    const config = configWith({ ADMISSION_WINDOW: "3" });
    const q = recordingQueue();
    const bindings = { ...env, WARM_QUEUE: q.queue, PRIORITY_QUEUE: q.queue };
    expect((await admitPending(bindings, config, Date.now())).admitted).toEqual({ [running]: 3 });
    expect(await taskCounts(paused)).toEqual({ pending: 5 });
    await env.DB.prepare("UPDATE jobs SET status = 'running' WHERE id = ?1").bind(paused).run();
    expect((await admitPending(bindings, config, Date.now())).admitted).toEqual({ [paused]: 3 });
    // Cancelled and finished jobs admit nothing either.
    await env.DB.prepare("UPDATE jobs SET status = 'cancelled' WHERE id = ?1").bind(paused).run();
    await finishSome(paused, 3);
    expect((await admitPending(bindings, config, Date.now())).admitted).toEqual({});
  });

  it("co-authors found by the consumer are written pending and admitted through the window", async () => {
    const parents = Array.from({ length: 200 }, (_, i) => `Admission Social ${i}`)
      .filter(hasCoAuthors)
      .slice(0, 4);
    const { jobId, messages } = await seedJob(parents, 1);
    const q = recordingQueue();
    const config = configWith({ ADMISSION_WINDOW: "2" });
    const batch = createMessageBatch(
      QUEUE,
      messages.map((m) => queueMessage(m)),
    );
    await handleWarmBatch(batch, { ...env, WARM_QUEUE: q.queue }, warmDeps({ config }));
    expect((await getQueueResult(batch, createExecutionContext())).explicitAcks).toHaveLength(parents.length);
    const { results } = await env.DB.prepare(
      "SELECT status, COUNT(*) AS n FROM tasks WHERE job_id = ?1 AND depth = 1 GROUP BY status",
    )
      .bind(jobId)
      .all<{ status: string; n: number }>();
    const byStatus = Object.fromEntries(results.map((r) => [r.status, r.n]));
    const children = (byStatus.queued ?? 0) + (byStatus.pending ?? 0);
    expect(children).toBeGreaterThan(2);
    // The parents are done: the window (2) is filled with children, the rest wait.
    expect(byStatus).toEqual({ queued: 2, pending: children - 2 });
    expect(q.sent.map((m) => m.depth)).toEqual([1, 1]);
  });

  it("the upload writes no task and sends nothing before the 202; ingest writes them pending and admits the first window of each kind", async () => {
    const q = recordingQueue();
    const isbnQ = recordingQueue();
    const workflows: string[] = [];
    const bindings = {
      ...env,
      ADMISSION_WINDOW: "4",
      WARM_QUEUE: q.queue,
      ISBN_QUEUE: isbnQ.queue,
      // No instance: the test runs the ingest stage itself.
      JOB_WORKFLOW: { create: async ({ id }: { id: string }) => workflows.push(id) },
    } as unknown as Env;
    const ctx = createExecutionContext();
    const csv =
      "Title,Author,ISBN13\nA,Ann Upload,9780306406157\nB,Bo Upload,\nC,Cy Upload,\nD,Di Upload,\nE,Ed Upload,\n";
    const response = await createApp().fetch(
      new Request("http://kindling.test/api/jobs?maxDepth=0", {
        method: "POST",
        headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "text/csv" },
        body: csv,
      }),
      bindings,
      ctx,
    );
    expect(response.status).toBe(202);
    const { jobId } = (await response.json()) as { jobId: string };
    await waitOnExecutionContext(ctx);
    // After the 202: no send, no task row, the job's 6 planned items (5 authors, 1 ISBN item), the instance.
    expect(q.calls() + isbnQ.calls()).toBe(0);
    expect(await taskCounts(jobId)).toEqual({});
    expect(await jobRow(jobId)).toMatchObject({ root_tasks: 6, total_tasks: 0 });
    expect(workflows).toEqual([jobId]);
    const job = await jobRow(jobId);
    if (!job) throw new Error("job missing");
    expect(await runIngest(bindings, job, loadConfig(bindings))).toMatchObject({ status: "SUCCESS" });
    // Authors and ISBN items have a window each (4): 4 of the 5 authors and the one ISBN item go out.
    expect(q.sent).toHaveLength(4);
    expect(isbnQ.sent.map((m) => m.authorKey)).toEqual(["isbn:9780306406157"]);
    expect(await taskCounts(jobId)).toEqual({ queued: 5, pending: 1 });
    // Nothing of this job may reach a consumer after the test: stop it.
    await env.DB.prepare("UPDATE jobs SET status = 'cancelled' WHERE id = ?1").bind(jobId).run();
  });
});
