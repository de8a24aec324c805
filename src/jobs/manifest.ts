import { listStages, stageRecord } from "../db/lifecycle/stages";
import { runSteps } from "../db/step";
import type { JobRow } from "../db/types";
import { jobCounters } from "../db/usage";
import { artifactKey, readArtifact } from "./artifacts";
import { describeCost } from "./cost";
import { INPUT_NAME } from "./ingest-stage";
import { type Manifest, manifestSchema, type StageRecord, verifyReportSchema } from "./stages";

/**
 * The manifest of a job as D1 and R2 hold it now: every stage's status, times, counts and artifact (with
 * its sha256), the verify report and the cost Kindling can count today. `publishing` is the publish stage
 * as it will be recorded once the manifest is stored (the manifest cannot hold its own checksum).
 */
export async function buildManifest(
  env: Env,
  job: JobRow,
  publishing: StageRecord | null,
  now: number,
): Promise<Manifest> {
  const [rows] = await runSteps(env.DB, [listStages(env.DB, job.id)]);
  const stages = rows.map(stageRecord).map((s) => (publishing && s.stage === "publish" ? publishing : s));
  const verifyStage = stages.find((s) => s.stage === "verify");
  const verify = verifyStage?.artifact
    ? await readArtifact(env.ARTIFACTS, verifyStage.artifact, verifyReportSchema)
    : null;
  const input = await env.ARTIFACTS.head(artifactKey(job.id, INPUT_NAME));
  const manifest: Manifest = {
    kind: "manifest",
    version: 1,
    jobId: job.id,
    jobStatus: job.status,
    inputSha256: job.input_sha256 ?? null,
    createdAt: new Date(job.created_at).toISOString(),
    publishedAt: new Date(now).toISOString(),
    stages,
    artifacts: [
      ...(input && job.input_sha256 ? [inputArtifact(input, job.input_sha256)] : []),
      ...stages.flatMap((s) =>
        s.artifact && s.stage !== "publish" ? [{ stage: s.stage, ...s.artifact }] : [],
      ),
    ],
    verify: verify?.ok ? verify.value : null,
    cost: {
      ...describeCost(await jobCounters(env.DB, job.id)),
      notes: [
        "counted by the warm consumer per invocation (job_costs); estimateUsd at the list prices in src/config.ts (PRICE_TABLE)",
        "KV operations and D1 rows serve a whole batch: apportioned by the job's share of its messages",
        "a batch's own D1 rows and marker writes are written with the consumer isolate's next batch",
      ],
    },
  };
  return manifestSchema.parse(manifest);
}

/**
 * The stored upload as the manifest lists it: its size in R2 and the job's sha256, which is the file's own,
 * so a gzip-compressed upload (every upload; a refresh job's JSON input is stored as is) says so.
 */
function inputArtifact(input: R2Object, sha256: string): Manifest["artifacts"][number] {
  const artifact = { stage: "ingest" as const, key: input.key, sha256, bytes: input.size };
  return input.httpMetadata?.contentEncoding === "gzip" ? { ...artifact, contentEncoding: "gzip" } : artifact;
}
