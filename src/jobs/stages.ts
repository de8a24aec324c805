import { z } from "zod";
import { jobCostSchema } from "./cost";

/** A job's stages, in the order its Workflow runs them. */
export const STAGES = ["ingest", "warm", "verify", "publish"] as const;
export type Stage = (typeof STAGES)[number];
export const stageSchema = z.enum(STAGES);

export const STAGE_STATUSES = ["PENDING", "RUNNING", "SUCCESS", "FAILED", "SKIPPED", "CANCELLED"] as const;
export type StageStatus = (typeof STAGE_STATUSES)[number];

/** The stages a rerun may start from (ingest cannot be rerun: the upload's bytes are not re-read). */
export const RERUN_FROM = ["warm", "verify", "publish"] as const;
export type RerunFrom = (typeof RERUN_FROM)[number];

export function stagesBefore(stage: Stage): Stage[] {
  return STAGES.slice(0, STAGES.indexOf(stage));
}

export function stagesFrom(stage: Stage): Stage[] {
  return STAGES.slice(STAGES.indexOf(stage));
}

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, "sha256 must be 64 hex digits");
const count = z.number().int().min(0);

/** ingest's artifact: the work items after normalisation and dedupe, with the counts that must agree. */
export const planSchema = z
  .object({
    kind: z.literal("plan"),
    jobId: z.string().uuid(),
    inputSha256: sha256,
    counts: z.object({ rows: count, duplicatesSkipped: count, items: count }),
    items: z.array(z.object({ key: z.string().min(1), name: z.string().min(1) })),
  })
  .refine((p) => p.items.length === p.counts.items, {
    message: "plan.items.length must equal plan.counts.items",
    path: ["items"],
  })
  .refine((p) => new Set(p.items.map((i) => i.key)).size === p.items.length, {
    message: "plan.items must not repeat a key",
    path: ["items"],
  });
export type Plan = z.infer<typeof planSchema>;

const stateCounts = z.object({
  total: count,
  done: count,
  skipped: count,
  failed: count,
  dead: count,
  cancelled: count,
  open: count,
});

/** warm's artifact: every task terminal (open = 0), with the counts and how many re-admissions it took. */
export const warmSummarySchema = z.object({
  kind: z.literal("warm"),
  jobId: z.string().uuid(),
  counts: stateCounts.refine((c) => c.open === 0, { message: "warm ended with open tasks" }),
  readmitted: count,
});
export type WarmSummary = z.infer<typeof warmSummarySchema>;

export const checkSchema = z.object({ name: z.string(), ok: z.boolean(), detail: z.string() });
export type Check = z.infer<typeof checkSchema>;

/** verify's artifact: the D1 invariants and the cache sample (what was missing, re-warmed, still missing). */
export const verifyReportSchema = z.object({
  kind: z.literal("verify"),
  jobId: z.string().uuid(),
  invariants: z.array(checkSchema),
  cache: z.object({
    sampleSize: count,
    checked: count,
    missingBefore: count,
    rewarmed: count,
    stillMissing: z.array(z.object({ item: z.string(), keys: z.array(z.string()) })),
  }),
});
export type VerifyReport = z.infer<typeof verifyReportSchema>;

export const artifactSchema = z.object({ key: z.string(), sha256, bytes: count });
export type Artifact = z.infer<typeof artifactSchema>;

/** What a stage row holds (D1 job_stages), as the API and the manifest show it. */
export const stageRecordSchema = z.object({
  stage: stageSchema,
  status: z.enum(STAGE_STATUSES),
  startedAt: z.string().nullable(),
  endedAt: z.string().nullable(),
  message: z.string().nullable(),
  counts: z.record(z.string(), z.number()).nullable(),
  artifact: artifactSchema.nullable(),
});
export type StageRecord = z.infer<typeof stageRecordSchema>;

/** The cost fields: the job's counted operations and their price (see README, "Cost per job"). */
export const costSchema = jobCostSchema.extend({ notes: z.array(z.string()) });

/** publish's artifact: manifest.json. */
export const manifestSchema = z.object({
  kind: z.literal("manifest"),
  version: z.literal(1),
  jobId: z.string().uuid(),
  jobStatus: z.string(),
  inputSha256: sha256.nullable(),
  createdAt: z.string(),
  publishedAt: z.string(),
  stages: z.array(stageRecordSchema),
  artifacts: z.array(
    artifactSchema.extend({
      stage: stageSchema,
      // The upload is stored gzip-compressed: `bytes` is its size in R2, `sha256` the file's once decoded.
      contentEncoding: z.literal("gzip").optional(),
    }),
  ),
  verify: verifyReportSchema.nullable(),
  cost: costSchema,
});
export type Manifest = z.infer<typeof manifestSchema>;

/** Each stage's artifact contract: the gate of the next stage parses the stored bytes with it. */
export const ARTIFACT_CONTRACTS = {
  ingest: planSchema,
  warm: warmSummarySchema,
  verify: verifyReportSchema,
  publish: manifestSchema,
} satisfies Record<Stage, z.ZodType>;

export const ARTIFACT_NAMES: Record<Stage, string> = {
  ingest: "plan.json",
  warm: "warm.json",
  verify: "verify.json",
  publish: "manifest.json",
};
