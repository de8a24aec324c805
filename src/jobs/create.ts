import { z } from "zod";
import { createUploadJobStatement, findJobByIdempotencyKey, getJob, type NewRootTask } from "../db/jobs";
import { stopJob } from "../db/lifecycle/stop-job";
import { runSteps } from "../db/step";
import type { JobRow } from "../db/types";
import { AppError, badRequest } from "../errors";
import type { ReadExport } from "../ingest/read-export";
import { partitionValid, warmMessageFor } from "../warm/messages";
import type { InputUpload } from "./input-upload";
import { lifecycleStatements, startLifecycle } from "./lifecycle";

export interface CreatedJob {
  job: JobRow;
  /** Depth-0 authors accepted into the job (their tasks are written by ingest, `pending`), and 0. */
  queued: number;
  pending: number;
  /** ISBN items accepted (written by ingest too), and 0. */
  isbnsQueued: number;
  isbnsPending: number;
  /** The job already existed under this Idempotency-Key (same file and options). */
  replayed: boolean;
}

/**
 * Turns a read upload into a job: the file's R2 upload (already streamed as it was parsed) completes while the
 * job row (its `root_tasks` the parse's count of authors and ISBN items), its stage rows and its first log
 * line are written in one D1 batch, and the job's Workflow instance starts. The depth-0 tasks themselves are
 * written by the ingest stage, from the stored upload, after the 202 (src/jobs/ingest-stage.ts), and enter
 * the queue through admission. Everything is validated before the batch: a refused upload leaves no job, no
 * stored file and no idempotency key behind (the caller discards `input` on any error; a replay discards it
 * here).
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
  // Every depth-0 task must be able to become a message (checked now, before anything is written), though
  // none is written or sent here.
  checkRootMessages(jobId, read, read.parsed.authors);
  isbnListSchema.parse(read.parsed.isbns);
  const record = jobRecord(jobId, read, idempotencyKey, now);
  const inputSha256 = await input.digest();
  // The upload completes in R2 while the job is written: a store that fails fails the job before anything is
  // admitted (and ingest's first check would refuse a job whose input is missing).
  const [stored, written] = await Promise.allSettled([
    input.complete(),
    env.DB.batch([
      createUploadJobStatement(env.DB, record, read.parsed.authors.length + read.parsed.isbns.length),
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
  await startLifecycle(env, jobId);
  clock.lap("workflowStarted");
  const job = await getJob(env.DB, jobId);
  if (!job) throw new AppError({ code: "internal_error", message: `job ${jobId} vanished after creation` });
  console.log(
    JSON.stringify({
      msg: "job created",
      jobId,
      rows: read.parsed.rows,
      authors: read.parsed.authors.length,
      isbns: read.parsed.isbns.length,
      // Where the time to 202 went after parsing (ms, cumulative laps): the profile of the upload path.
      ms: clock.laps,
    }),
  );
  return {
    job,
    queued: read.parsed.authors.length,
    pending: 0,
    isbnsQueued: read.parsed.isbns.length,
    isbnsPending: 0,
    replayed: false,
  };
}

/** Every ISBN-13 the parser produced (check digit verified): what the ISBN items' keys are made of. */
const isbnListSchema = z.array(z.string().regex(/^97[89]\d{10}$/));

/** Each depth-0 author as its message would be, checked against the message schema before anything is written. */
function checkRootMessages(jobId: string, { parsed, meta }: ReadExport, roots: NewRootTask[]): void {
  const { invalid } = partitionValid(
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
