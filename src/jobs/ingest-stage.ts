import { z } from "zod";
import type { StageEnd } from "../db/lifecycle/stage-transitions";
import type { JobRow } from "../db/types";
import { artifactKey, putJsonArtifact } from "./artifacts";
import { ARTIFACT_NAMES, type Plan, planSchema } from "./stages";

const itemRow = z.object({ author_key: z.string(), author_name: z.string() });

export const INPUT_NAME = "input";

/**
 * ingest, after the 202: the upload is in R2 (completed as the job was written) and hashes to the job's sha256; this writes
 * the plan (the items after normalisation and dedupe, read back from the depth-0 task rows) and checks it
 * against its contract and the job row. A check that fails is named in the stage's message.
 */
export async function runIngest(env: Env, job: JobRow): Promise<StageEnd> {
  const input = await env.ARTIFACTS.get(artifactKey(job.id, INPUT_NAME));
  if (!input || !job.input_sha256) {
    await input?.body.cancel();
    return { status: "FAILED", message: "input_stored: the upload is not in R2 or has no recorded sha256" };
  }
  // Hashes the stored bytes themselves (streamed): a multipart upload carries no sha256 of its own.
  if ((await streamSha256(input.body)) !== job.input_sha256)
    return { status: "FAILED", message: "input_checksum: the stored upload's sha256 differs from the job's" };
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

async function streamSha256(body: ReadableStream<Uint8Array>): Promise<string> {
  const hasher = new crypto.DigestStream("SHA-256");
  await body.pipeTo(hasher);
  return [...new Uint8Array(await hasher.digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
