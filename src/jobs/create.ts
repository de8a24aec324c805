import { createJobStatements, findJobByIdempotencyKey, getJob } from "../db/jobs";
import { runSteps } from "../db/step";
import { markQueued } from "../db/tasks";
import type { JobRow } from "../db/types";
import { AppError, badRequest } from "../errors";
import type { ReadExport } from "../ingest/read-export";
import { partitionValid, sendChecked, type WarmMessage, warmMessageFor, warmQueue } from "../warm/messages";
import { artifactKey, putArtifact } from "./artifacts";
import { INPUT_NAME } from "./ingest-stage";
import { lifecycleStatements, startLifecycle } from "./lifecycle";

export interface CreatedJob {
  job: JobRow;
  /** Depth-0 tasks whose message is on the queue, and those left pending for the sweep. */
  queued: number;
  pending: number;
  /** The job already existed under this Idempotency-Key (same file and options). */
  replayed: boolean;
}

/**
 * Turns a read upload into a job: write the job and its tasks (pending) in one D1 batch, send a message per
 * author in ≤100-message batches, then mark the sent tasks queued. A task whose send failed stays pending
 * and the cron sweep sends it again, so nothing is lost. Everything is validated before the batch: a
 * refused upload leaves no job and no idempotency key behind.
 */
export async function createJob(
  env: Env,
  read: ReadExport,
  idempotencyKey: string | null,
  now: number,
  input: Uint8Array,
): Promise<CreatedJob> {
  if (idempotencyKey) {
    const existing = await findJobByIdempotencyKey(env.DB, idempotencyKey);
    if (existing) return replay(existing, read.requestHash);
  }
  const jobId = crypto.randomUUID();
  const clock = phaseClock();
  const messages = rootMessages(jobId, read);
  // The upload goes to R2 first: a job row always has its input stored (ingest's first check).
  const stored = await putArtifact(env.ARTIFACTS, artifactKey(jobId, INPUT_NAME), input, "text/csv");
  clock.lap("r2Put");
  try {
    await env.DB.batch([
      ...createJobStatements(env.DB, jobRecord(jobId, read, idempotencyKey, now), read.parsed.authors),
      ...lifecycleStatements(env.DB, jobId, stored.sha256, now),
    ]);
  } catch (error) {
    // Two uploads raced with the same Idempotency-Key: the loser answers with the winner's job.
    if (idempotencyKey && String(error).includes("UNIQUE")) {
      const existing = await findJobByIdempotencyKey(env.DB, idempotencyKey);
      if (existing) return replay(existing, read.requestHash);
    }
    throw error;
  }
  clock.lap("d1Write");
  // The instance starts while the messages go out: it only reads what the batch above committed.
  const [sent] = await Promise.all([
    sendChecked(warmQueue(env), messages).then(async (result) => {
      clock.lap("send");
      if (result.sent.length > 0) await runSteps(env.DB, [markQueued(env.DB, result.sent, now)]);
      clock.lap("markQueued");
      return result;
    }),
    startLifecycle(env, jobId),
  ]);
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
  return { job, queued: sent.sent.length, pending: sent.unsent.length, replayed: false };
}

/** One message per depth-0 author, each checked against the message schema before anything is written. */
function rootMessages(jobId: string, { parsed, meta }: ReadExport): WarmMessage[] {
  const { valid, invalid } = partitionValid(
    parsed.authors.map((a) =>
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

function replay(job: JobRow, requestHash: string): CreatedJob {
  if (job.request_hash !== requestHash) {
    throw new AppError({
      code: "idempotency_key_reused",
      message: "this Idempotency-Key was already used for a different file or options",
      httpStatus: 422,
      kind: "permanent",
      details: { jobId: job.id },
    });
  }
  return { job, queued: job.root_tasks, pending: 0, replayed: true };
}

/** Cumulative milliseconds at each named point (Date.now advances across I/O in Workers, which is all we time). */
function phaseClock() {
  const started = Date.now();
  const laps: Record<string, number> = {};
  return { laps, lap: (name: string) => (laps[name] = Date.now() - started) };
}
