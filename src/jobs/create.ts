import { z } from "zod";
import { createJobStatements, findJobByIdempotencyKey, getJob, type NewRootTask } from "../db/jobs";
import { stopJob } from "../db/lifecycle/stop-job";
import { runSteps } from "../db/step";
import { markPending } from "../db/tasks";
import type { JobRow } from "../db/types";
import { AppError, badRequest } from "../errors";
import { isbnItemKey } from "../ingest/isbn";
import type { ReadExport } from "../ingest/read-export";
import {
  partitionValid,
  sendChecked,
  sendWarmMessages,
  type WarmMessage,
  warmMessageFor,
  warmQueue,
} from "../warm/messages";
import { failPoisonTasks } from "../warm/poison";
import type { InputUpload } from "./input-upload";
import { lifecycleStatements, startLifecycle } from "./lifecycle";

export interface CreatedJob {
  job: JobRow;
  /** Depth-0 author tasks whose message is on the queue, and those left pending for the sweep. */
  queued: number;
  pending: number;
  /** ISBN items whose messages go out right after the 202 (`sendAfterResponse`), and those left pending. */
  isbnsQueued: number;
  isbnsPending: number;
  /**
   * Sends the ISBN items' messages and marks them queued: run after the response (waitUntil), so the 202
   * waits for the authors only. Whatever it cannot send stays pending, and the cron sweep sends it.
   */
  sendAfterResponse?: () => Promise<void>;
  /** The job already existed under this Idempotency-Key (same file and options). */
  replayed: boolean;
}

/**
 * Turns a read upload into a job: the file's R2 upload (already streamed as it was parsed) completes while the job, its tasks (`queued`: authors and ISBN
 * items), its stage rows and its first log line are written in one D1 batch; then a message per author goes
 * out in ≤100-message batches while the job's Workflow instance starts (the ISBN items' messages go out
 * after the 202: `sendAfterResponse`). A task whose send failed goes back to `pending` and the sweeper
 * sends it again; if the worker dies between the batch and the sends, the job's warm stage finds nothing
 * moving and re-admits the tasks within a minute. Everything is validated before the batch: a refused
 * upload leaves no job, no stored file and no idempotency key behind (the caller discards `input` on any
 * error; a replay discards it here).
 */
export async function createJob(
  env: Env,
  read: ReadExport,
  idempotencyKey: string | null,
  now: number,
  jobId: string,
  input: InputUpload,
): Promise<CreatedJob> {
  if (idempotencyKey) {
    const existing = await findJobByIdempotencyKey(env.DB, idempotencyKey);
    if (existing) return replayDiscarding(existing, read, input);
  }
  const clock = phaseClock();
  // Authors become messages (each checked) now; the ISBN items' keys are checked as one list, and their
  // messages are built and checked after the 202 (sendAfterResponse), off the upload's critical path.
  const authorMessages = rootMessages(jobId, read, read.parsed.authors);
  isbnListSchema.parse(read.parsed.isbns);
  const record = jobRecord(jobId, read, idempotencyKey, now);
  const inputSha256 = await input.digest();
  // The upload completes in R2 while the job is written: a store that fails fails the job before anything is
  // sent (and ingest's first check would refuse a job whose input is missing).
  const [stored, written] = await Promise.allSettled([
    input.complete(),
    env.DB.batch([
      ...createJobStatements(env.DB, record, rootTasks(read), "queued"),
      ...lifecycleStatements(env.DB, jobId, inputSha256, now),
    ]),
  ]);
  if (written.status === "rejected") {
    // Two uploads raced with the same Idempotency-Key: the loser answers with the winner's job.
    if (idempotencyKey && String(written.reason).includes("UNIQUE")) {
      const existing = await findJobByIdempotencyKey(env.DB, idempotencyKey);
      if (existing) return replayDiscarding(existing, read, input);
    }
    throw written.reason;
  }
  if (stored.status === "rejected") {
    await runSteps(env.DB, [stopJob(env.DB, jobId, "failed", Date.now())]);
    throw new AppError({
      code: "internal_error",
      message: `the upload could not be stored: ${String(stored.reason)}`,
      httpStatus: 503,
      kind: "transient",
    });
  }
  clock.lap("r2PutAndD1Write");
  // Tasks were written `queued`; only the messages that could not be sent go back to `pending` (for the
  // sweeper). The instance starts meanwhile: it only reads what the batch above committed.
  const [sent] = await Promise.all([
    sendChecked(warmQueue(env), authorMessages).then(async (result) => {
      clock.lap("send");
      if (result.unsent.length > 0) await runSteps(env.DB, [markPending(env.DB, result.unsent, now)]);
      return result;
    }),
    startLifecycle(env, jobId),
  ]);
  clock.lap("workflowStarted");
  const job = await getJob(env.DB, jobId);
  if (!job) throw new AppError({ code: "internal_error", message: `job ${jobId} vanished after creation` });
  console.log(
    JSON.stringify({
      msg: "job created",
      jobId,
      rows: read.parsed.rows,
      authors: read.parsed.authors.length,
      sendBatchCalls: sent.calls,
      unsent: sent.unsent.length,
      // Where the time to 202 went after parsing (ms, cumulative laps): the profile of the upload path.
      ms: clock.laps,
    }),
  );
  return {
    job,
    queued: sent.sent.length,
    pending: sent.unsent.length,
    isbnsQueued: read.parsed.isbns.length,
    isbnsPending: 0,
    replayed: false,
    sendAfterResponse: () => sendIsbnMessages(env, isbnMessagesFor(jobId, read), now),
  };
}

/** Every ISBN-13 the parser produced (check digit verified): what the ISBN items' keys are made of. */
const isbnListSchema = z.array(z.string().regex(/^97[89]\d{10}$/));

function isbnMessagesFor(jobId: string, { parsed, meta }: ReadExport): WarmMessage[] {
  return parsed.isbns.map((isbn13) =>
    warmMessageFor({
      job_id: jobId,
      author_key: isbnItemKey(isbn13),
      author_name: isbn13,
      depth: 0,
      max_depth: meta.options.maxDepth,
      generation: 0,
    }),
  );
}

async function sendIsbnMessages(env: Env, messages: readonly WarmMessage[], now: number): Promise<void> {
  if (messages.length === 0) return;
  try {
    // Checked against the message schema here; one that fails is a poison task, failed on its own.
    const sent = await sendWarmMessages(warmQueue(env), messages);
    await failPoisonTasks(env.DB, sent.invalid, now);
    // Written `queued` with the job; what could not be sent goes back to `pending` for the sweep.
    if (sent.unsent.length > 0) await runSteps(env.DB, [markPending(env.DB, sent.unsent, now)]);
  } catch (error) {
    // Left queued without a message: the warm stage sees nothing move and re-admits them.
    console.error(JSON.stringify({ msg: "sending ISBN items after the 202 failed", error: String(error) }));
  }
}

/** Depth-0 tasks: every author, then every ISBN item (its display name is the ISBN-13 itself). */
function rootTasks({ parsed }: ReadExport): NewRootTask[] {
  return [
    ...parsed.authors,
    ...parsed.isbns.map((isbn13) => ({ key: isbnItemKey(isbn13), name: isbn13, kind: "isbn" as const })),
  ];
}

/** One message per depth-0 task, each checked against the message schema before anything is written. */
function rootMessages(jobId: string, { parsed, meta }: ReadExport, roots: NewRootTask[]): WarmMessage[] {
  const { valid, invalid } = partitionValid(
    roots.map((a) =>
      warmMessageFor({
        job_id: jobId,
        author_key: a.key,
        author_name: a.name,
        depth: 0,
        max_depth: meta.options.maxDepth,
        generation: 0,
      }),
    ),
  );
  const first = invalid[0];
  if (first) {
    const row = parsed.authors.find((a) => a.key === first.message.authorKey)?.firstRow;
    throw badRequest("invalid_row", `row ${row ?? "?"} cannot be warmed: ${first.reason}`, { row });
  }
  return valid;
}

function jobRecord(
  id: string,
  { parsed, meta, requestHash }: ReadExport,
  idempotencyKey: string | null,
  now: number,
) {
  return {
    id,
    maxDepth: meta.options.maxDepth,
    priority: meta.options.priority,
    format: parsed.format,
    filename: meta.filename,
    idempotencyKey,
    requestHash,
    rowsTotal: parsed.rows,
    duplicatesSkipped: parsed.duplicatesSkipped,
    now,
  };
}

/** A replay stores nothing: the existing job already has its input. */
async function replayDiscarding(job: JobRow, read: ReadExport, input: InputUpload): Promise<CreatedJob> {
  await input.discard();
  return replay(job, read);
}

function replay(job: JobRow, { requestHash, parsed }: ReadExport): CreatedJob {
  if (job.request_hash !== requestHash) {
    throw new AppError({
      code: "idempotency_key_reused",
      message: "this Idempotency-Key was already used for a different file or options",
      httpStatus: 422,
      kind: "permanent",
      details: { jobId: job.id },
    });
  }
  // Same file and options, so the same parse: its ISBN items are the root tasks that are not authors.
  const isbns = Math.min(parsed.isbns.length, job.root_tasks);
  return {
    job,
    queued: job.root_tasks - isbns,
    pending: 0,
    isbnsQueued: isbns,
    isbnsPending: 0,
    replayed: true,
  };
}

/** Cumulative milliseconds at each named point (Date.now advances across I/O in Workers, which is all we time). */
function phaseClock() {
  const started = Date.now();
  const laps: Record<string, number> = {};
  return { laps, lap: (name: string) => (laps[name] = Date.now() - started) };
}
