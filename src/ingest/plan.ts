import type { Config } from "../config";
import { createJobStatements, findJobByIdempotencyKey, getJob } from "../db/jobs";
import { markQueuedStatements } from "../db/tasks";
import type { JobRow } from "../db/types";
import { AppError, badRequest } from "../errors";
import { enabledSources } from "../sources";
import { partitionValid, sendWarmMessages, warmMessageFor, warmQueue } from "../warm/messages";
import { parseLibraryExport } from "./csv";
import type { Upload } from "./upload";

/** Rough planning figures, documented in the README; the job's progress replaces them with facts. */
const ESTIMATED_WORKS_PER_AUTHOR = 12;
const ESTIMATED_FANOUT_PER_LEVEL = 0.2;
const UNLIMITED_AUTHORS_PER_SECOND = 20;

export interface JobCreated {
  jobId: string;
  status: string;
  format: string;
  rows: number;
  maxDepth: number;
  priority: string;
  authorsQueued: number;
  authorsPending: number;
  duplicatesSkipped: number;
  /** Rows with a value past a limit (e.g. an author name over 300 characters): not warmed. */
  rowsRejected: number;
  rejections: { row: number; reason: string }[];
  estimatedWorks: number;
  estimatedDuration: { seconds: number; text: string };
  links: { progress: string; failures: string };
}

async function sha256Hex(parts: (string | Uint8Array)[]): Promise<string> {
  const encoder = new TextEncoder();
  const chunks = parts.map((p) => (typeof p === "string" ? encoder.encode(p) : p));
  const total = chunks.reduce((n, c) => n + c.byteLength + 1, 0);
  const buffer = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    buffer.set(chunk, offset);
    offset += chunk.byteLength + 1; // a zero byte separates the parts
  }
  const digest = await crypto.subtle.digest("SHA-256", buffer);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function describeSeconds(seconds: number): string {
  if (seconds < 90) return `about ${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 5400) return `about ${Math.round(seconds / 60)} min`;
  return `about ${(seconds / 3600).toFixed(1)} h`;
}

function estimate(config: Config, authors: number, maxDepth: number) {
  const expectedAuthors = authors * (1 + ESTIMATED_FANOUT_PER_LEVEL) ** maxDepth;
  const rates = enabledSources(config).map((s) =>
    s === "openlibrary" ? config.OPENLIBRARY_RATE_PER_SECOND : config.GOOGLE_BOOKS_RATE_PER_SECOND,
  );
  // Each author needs about one request per source, so the slowest rate-limited source sets the pace.
  const limited = rates.filter((r) => r > 0);
  const authorsPerSecond = limited.length > 0 ? Math.min(...limited) : UNLIMITED_AUTHORS_PER_SECOND;
  const seconds = Math.ceil(expectedAuthors / authorsPerSecond);
  return {
    estimatedWorks: Math.round(expectedAuthors * ESTIMATED_WORKS_PER_AUTHOR),
    estimatedDuration: { seconds, text: describeSeconds(seconds) },
  };
}

export function describeCreatedJob(
  config: Config,
  job: JobRow,
  queued: number,
  pending: number,
  refused: Pick<JobCreated, "rowsRejected" | "rejections"> = { rowsRejected: 0, rejections: [] },
): JobCreated {
  const rootAuthors = queued + pending;
  return {
    jobId: job.id,
    status: job.status,
    format: job.format,
    rows: job.rows_total,
    maxDepth: job.max_depth,
    priority: job.priority,
    authorsQueued: queued,
    authorsPending: pending,
    duplicatesSkipped: job.duplicates_skipped,
    ...refused,
    ...estimate(config, rootAuthors, job.max_depth),
    links: { progress: `/api/jobs/${job.id}`, failures: `/api/jobs/${job.id}/failures` },
  };
}

/**
 * Turns an upload into a job: parse, dedupe, write the job and its tasks (pending) in one D1 batch,
 * send a message per author in ≤100-message batches, then mark the sent tasks queued. A task whose
 * send failed stays pending and the cron sweep sends it again, so nothing is lost.
 */
export async function createJobFromUpload(
  env: Env,
  config: Config,
  upload: Upload,
  idempotencyKey: string | null,
  now: number,
): Promise<{ created: JobCreated; replayed: boolean }> {
  const requestHash = await sha256Hex([
    upload.bytes,
    String(upload.options.maxDepth),
    upload.options.priority,
  ]);
  if (idempotencyKey) {
    const existing = await findJobByIdempotencyKey(env.DB, idempotencyKey);
    if (existing) return { created: replay(config, existing, requestHash), replayed: true };
  }
  const parsed = parseLibraryExport(upload.text, { maxRows: config.UPLOAD_MAX_ROWS });
  const jobId = crypto.randomUUID();
  // Every message is checked before anything is written: a refused upload leaves no job behind.
  const { valid: messages, invalid } = partitionValid(
    parsed.authors.map((a) =>
      warmMessageFor({
        job_id: jobId,
        author_key: a.key,
        author_name: a.name,
        depth: 0,
        max_depth: upload.options.maxDepth,
        generation: 0,
      }),
    ),
  );
  if (invalid.length > 0) {
    const author = parsed.authors.find((a) => a.key === invalid[0]?.message.authorKey);
    throw badRequest(
      "invalid_row",
      `row ${author?.firstRow ?? "?"} cannot be warmed: ${invalid[0]?.reason}`,
      {
        row: author?.firstRow,
      },
    );
  }
  try {
    await env.DB.batch(
      createJobStatements(
        env.DB,
        {
          id: jobId,
          maxDepth: upload.options.maxDepth,
          priority: upload.options.priority,
          format: parsed.format,
          filename: upload.filename,
          idempotencyKey,
          requestHash,
          rowsTotal: parsed.rows,
          duplicatesSkipped: parsed.duplicatesSkipped,
          now,
        },
        parsed.authors,
      ),
    );
  } catch (error) {
    // Two uploads raced with the same Idempotency-Key: the loser answers with the winner's job.
    if (idempotencyKey && String(error).includes("UNIQUE")) {
      const existing = await findJobByIdempotencyKey(env.DB, idempotencyKey);
      if (existing) return { created: replay(config, existing, requestHash), replayed: true };
    }
    throw error;
  }
  const sent = await sendWarmMessages(warmQueue(env), messages);
  if (sent.sent.length > 0) await env.DB.batch(markQueuedStatements(env.DB, sent.sent, now));
  const job = await getJob(env.DB, jobId);
  if (!job) throw new AppError({ code: "internal_error", message: `job ${jobId} vanished after creation` });
  console.log(
    JSON.stringify({
      msg: "job created",
      jobId,
      rows: parsed.rows,
      authors: parsed.authors.length,
      sendBatchCalls: sent.calls,
      unsent: sent.unsent.length,
    }),
  );
  const refused = { rowsRejected: parsed.rowsRejected, rejections: parsed.rejections };
  return {
    created: describeCreatedJob(config, job, sent.sent.length, sent.unsent.length, refused),
    replayed: false,
  };
}

function replay(config: Config, job: JobRow, requestHash: string): JobCreated {
  if (job.request_hash !== requestHash) {
    throw new AppError({
      code: "idempotency_key_reused",
      message: "this Idempotency-Key was already used for a different file or options",
      httpStatus: 422,
      kind: "permanent",
      details: { jobId: job.id },
    });
  }
  return describeCreatedJob(config, job, job.root_tasks, 0);
}
