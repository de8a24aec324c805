import { z } from "zod";
import type { Config } from "../config";
import { getJob } from "../db/jobs";
import type { StageEnd } from "../db/lifecycle/stage-transitions";
import { runSteps } from "../db/step";
import { insertRootSlice, type NewRootTask } from "../db/tasks";
import type { JobRow } from "../db/types";
import { AppError } from "../errors";
import { readExport } from "../ingest/read-export";
import { PRIORITIES } from "../ingest/upload";
import { admitQuietly } from "../warm/admission";
import { artifactKey, hexOf, putJsonArtifact } from "./artifacts";
import { rootTasksOf } from "./root-tasks";
import { ARTIFACT_NAMES, type Plan, planSchema } from "./stages";

const itemRow = z.object({ author_key: z.string(), author_name: z.string() });

export const INPUT_NAME = "input";

/**
 * Depth-0 tasks written per D1 batch, and the pause after each. D1 runs one statement at a time per
 * database: a 150,000-row insert in one transaction would hold every other job's consumers for seconds, and
 * slices sent back to back would too. Locally the D1 simulator shares the worker's process: slices sent
 * back to back held the upload's own 202 (3.1–3.4 s with the pause, 7.5–9.6 s without; README, Ingest).
 */
const ROOT_SLICE_ROWS = 5_000;
const ROOT_SLICE_PAUSE_MS = 20;

/**
 * ingest, after the 202: the upload is in R2 (completed as the job was written). An upload's depth-0 tasks
 * are written here, not before the 202: the stored file is parsed again (the same parser and options, so
 * it must give the job's request hash and `root_tasks` items) and its authors
 * and ISBN items are inserted `pending`, ROOT_SLICE_ROWS to a D1 batch, then admitted. A job whose tasks are already written
 * (a retried step, a refresh job) only has its stored bytes hashed. Then the plan (the items read back from
 * the depth-0 task rows) is written and checked against its contract and the job row. A check that fails
 * is named in the stage's message.
 */
export async function runIngest(env: Env, job: JobRow, config: Config): Promise<StageEnd | null> {
  const input = await env.ARTIFACTS.get(artifactKey(job.id, INPUT_NAME));
  if (!input || !job.input_sha256) {
    await input?.body.cancel();
    return { status: "FAILED", message: "input_stored: the upload is not in R2 or has no recorded sha256" };
  }
  const content = decoded(input);
  if (job.roots_written === 0) {
    const refused = await writeRootTasks(env, job, content, config);
    if (refused !== "written") return refused;
  } else if ((await streamSha256(content)) !== job.input_sha256) {
    // Hashes the stored file itself (streamed): a multipart upload carries no sha256 of its own.
    return { status: "FAILED", message: "input_checksum: the stored upload's sha256 differs from the job's" };
  }
  const { results } = await env.DB.prepare(
    "SELECT author_key, author_name FROM tasks WHERE job_id = ?1 AND depth = 0 ORDER BY author_key",
  )
    .bind(job.id)
    .all();
  const items = results.map((r) => itemRow.parse(r)).map((r) => ({ key: r.author_key, name: r.author_name }));
  const plan: Plan = {
    kind: "plan",
    jobId: job.id,
    inputSha256: job.input_sha256,
    counts: { rows: job.rows_total, duplicatesSkipped: job.duplicates_skipped, items: items.length },
    items,
  };
  const parsed = planSchema.safeParse(plan);
  if (!parsed.success)
    return { status: "FAILED", message: `plan_contract: ${parsed.error.issues[0]?.message ?? "invalid"}` };
  if (items.length !== job.root_tasks)
    return {
      status: "FAILED",
      message: `plan_items: ${items.length} items ≠ job.root_tasks ${job.root_tasks}`,
    };
  const artifact = await putJsonArtifact(env.ARTIFACTS, artifactKey(job.id, ARTIFACT_NAMES.ingest), plan);
  return { status: "SUCCESS", counts: plan.counts, artifact };
}

/**
 * Parses the stored upload (hashing it on the way) and writes its depth-0 tasks. Returns the failed check;
 * null when the job was stopped (cancelled) before they were written, so none were and the run ends there.
 */
async function writeRootTasks(
  env: Env,
  job: JobRow,
  body: ReadableStream<Uint8Array>,
  config: Config,
): Promise<StageEnd | "written" | null> {
  const options = { maxDepth: job.max_depth, priority: z.enum(PRIORITIES).parse(job.priority) };
  let read: Awaited<ReturnType<typeof readExport>>;
  try {
    read = await readExport(
      { chunks: body, meta: () => ({ options, filename: job.filename }) },
      { maxRows: config.UPLOAD_MAX_ROWS },
    );
  } catch (error) {
    if (!(error instanceof AppError)) throw error;
    return { status: "FAILED", message: `input_parse: the stored upload no longer parses: ${error.message}` };
  }
  // The parse hashes the file with the job's options: the same hash as at the upload proves these are the
  // bytes that were accepted (and so the ones input_sha256 was taken of).
  if (read.requestHash !== job.request_hash)
    return { status: "FAILED", message: "input_checksum: the stored upload differs from the one accepted" };
  const roots = rootTasksOf(read.parsed);
  if (roots.length !== job.root_tasks)
    return {
      status: "FAILED",
      message: `plan_items: ${roots.length} items parsed ≠ job.root_tasks ${job.root_tasks}`,
    };
  const written = await writeInSlices(env, job.id, roots);
  if (written === "stopped") return null;
  if (written === "short")
    return {
      status: "FAILED",
      message: `plan_items: the depth-0 task rows do not add up to job.root_tasks ${job.root_tasks}`,
    };
  // The first window goes out now, while the plan is read back and stored.
  await admitQuietly(env, config, Date.now());
  return "written";
}

/**
 * The depth-0 tasks, ROOT_SLICE_ROWS to a D1 batch with a pause after each: "stopped" when the job was
 * cancelled meanwhile (no more rows; those written were closed with the job), "short" when the rows do not
 * add up to the job's `root_tasks` after the last slice.
 */
async function writeInSlices(
  env: Env,
  jobId: string,
  roots: readonly NewRootTask[],
): Promise<"written" | "stopped" | "short"> {
  for (let start = 0; start < roots.length; start += ROOT_SLICE_ROWS) {
    const slice = roots.slice(start, start + ROOT_SLICE_ROWS);
    const last = start + ROOT_SLICE_ROWS >= roots.length;
    const [{ writable }] = await runSteps(env.DB, [
      insertRootSlice(env.DB, jobId, slice, { now: Date.now(), last }),
    ]);
    if (!writable) return "stopped";
    if (!last) await new Promise((resolve) => setTimeout(resolve, ROOT_SLICE_PAUSE_MS));
  }
  const after = await getJob(env.DB, jobId);
  if (!after) return "stopped";
  return after.roots_written === 1 ? "written" : "short";
}

/** The stored file's bytes: an upload is stored gzip-compressed (input-upload.ts), a refresh job's input as is. */
function decoded(input: R2ObjectBody): ReadableStream<Uint8Array> {
  if (input.httpMetadata?.contentEncoding !== "gzip") return input.body;
  return input.body.pipeThrough(new DecompressionStream("gzip"));
}

async function streamSha256(body: ReadableStream<Uint8Array>): Promise<string> {
  const hasher = new crypto.DigestStream("SHA-256");
  await body.pipeTo(hasher);
  return hexOf(await hasher.digest);
}
