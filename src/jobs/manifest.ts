import { z } from "zod";
import { listStages, stageRecord } from "../db/lifecycle/stages";
import { runSteps } from "../db/step";
import type { JobRow } from "../db/types";
import { artifactKey, readArtifact } from "./artifacts";
import { INPUT_NAME } from "./ingest-stage";
import { type Manifest, manifestSchema, type StageRecord, verifyReportSchema } from "./stages";

const providerRow = z.object({ source: z.string(), n: z.coerce.number() });

/**
 * Upstream requests per provider as the job's done tasks recorded them (tasks.sources, one report per
 * provider with its request count). Requests of attempts that failed or were retried are not recorded there.
 */
async function upstreamRequests(db: D1Database, jobId: string): Promise<Record<string, number>> {
  const { results } = await db
    .prepare(
      `SELECT s.value ->> 'source' AS source, SUM(s.value ->> 'requests') AS n
       FROM tasks AS t, json_each(t.sources) AS s
       WHERE t.job_id = ?1 AND t.sources IS NOT NULL AND json_valid(t.sources)
       GROUP BY 1`,
    )
    .bind(jobId)
    .all();
  return Object.fromEntries(results.map((r) => providerRow.parse(r)).map((r) => [r.source, r.n]));
}

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
      ...(input && job.input_sha256
        ? [{ stage: "ingest" as const, key: input.key, sha256: job.input_sha256, bytes: input.size }]
        : []),
      ...stages.flatMap((s) =>
        s.artifact && s.stage !== "publish" ? [{ stage: s.stage, ...s.artifact }] : [],
      ),
    ],
    verify: verify?.ok ? verify.value : null,
    cost: {
      queueOperations: null,
      kvWrites: null,
      d1RowsWritten: null,
      upstreamRequests: await upstreamRequests(env.DB, job.id),
      notes: [
        "upstreamRequests: requests recorded by the job's done tasks, per provider (failed attempts not included)",
        "queueOperations, kvWrites, d1RowsWritten: not counted per job yet (null)",
      ],
    },
  };
  return manifestSchema.parse(manifest);
}
