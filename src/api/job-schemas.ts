import { z } from "zod";
import { jobCostSchema } from "../jobs/cost";
import { STAGE_STATUSES, STAGES } from "../jobs/stages";
import type { RedriveResult } from "../warm/redrive";
import type { JobCreated, JobProgress, JobStageView, JobView, StateCounts } from "./job-responses";
import type { summarizeJob } from "./progress";

/**
 * The job endpoints' answers as zod schemas, for the OpenAPI document (and so the scripts' generated
 * client). Each is tied to its interface in job-responses.ts at compile time: change one, the other must
 * follow or typecheck fails.
 */
const jobStatus = z.enum([
  "queued",
  "running",
  "paused",
  "completed",
  "completed_with_errors",
  "cancelled",
  "failed",
]);
const stateCounts = z.object({
  total: z.number().int(),
  pending: z.number().int(),
  queued: z.number().int(),
  running: z.number().int(),
  done: z.number().int(),
  skipped: z.number().int(),
  failed: z.number().int(),
  dead: z.number().int(),
  cancelled: z.number().int(),
});

const providerQuota = z.object({
  used: z.number().int(),
  limit: z.number().int().nullable(),
  exhausted: z.boolean(),
  resetAt: z.string(),
});

export const jobCreatedSchema = z.object({
  jobId: z.string(),
  status: jobStatus,
  format: z.string(),
  rows: z.number().int(),
  maxDepth: z.number().int(),
  priority: z.string(),
  authorsQueued: z.number().int(),
  authorsPending: z.number().int(),
  isbnsQueued: z.number().int(),
  isbnsPending: z.number().int(),
  isbnsUnusable: z.object({
    count: z.number().int(),
    examples: z.array(z.object({ row: z.number().int(), value: z.string(), reason: z.string() })),
  }),
  duplicatesSkipped: z.number().int(),
  rowsRejected: z.number().int(),
  rejections: z.array(z.object({ row: z.number().int(), reason: z.string() })),
  estimatedWorks: z.number(),
  estimatedDuration: z.object({ seconds: z.number(), text: z.string() }),
  links: z.object({ progress: z.string(), failures: z.string() }),
});

/** What every view of a job starts with (progress.ts `identity`). */
const jobIdentity = z.object({
  jobId: z.string(),
  status: jobStatus,
  format: z.string(),
  filename: z.string().nullable(),
  maxDepth: z.number().int(),
  priority: z.string(),
});

export const jobProgressSchema = jobIdentity.extend({
  rows: z.number().int(),
  duplicatesSkipped: z.number().int(),
  counts: stateCounts,
  byKind: z.object({ author: stateCounts, isbn: stateCounts.extend({ warm: z.number().int() }) }),
  byDepth: z.array(stateCounts.extend({ depth: z.number().int() })),
  worksCached: z.number().int(),
  deadLetters: z.number().int(),
  percent: z.number(),
  etaSeconds: z.number().nullable(),
  createdAt: z.string().nullable(),
  startedAt: z.string().nullable(),
  completedAt: z.string().nullable(),
  updatedAt: z.string().nullable(),
  links: z.object({ self: z.string(), failures: z.string() }),
  quotas: z.object({ openlibrary: providerQuota, googlebooks: providerQuota }).nullable().optional(),
  cost: jobCostSchema.optional().describe("The job's billable operations and their estimated price (README)"),
});

const stageStatus = z.enum(STAGE_STATUSES);

export const jobStageViewSchema = z.object({
  stage: z.enum(STAGES),
  status: stageStatus,
  startedAt: z.string().nullable(),
  endedAt: z.string().nullable(),
  message: z.string().nullable(),
  counts: z.record(z.string(), z.number()).nullable(),
  artifact: z.object({ key: z.string(), sha256: z.string(), bytes: z.number().int() }).nullable(),
});

/** GET /api/jobs/:id and every control route: the progress, the current stage, each stage and the quotas. */
export const jobViewSchema = jobProgressSchema.extend({
  stage: z.object({ name: z.enum(STAGES), status: stageStatus }).nullable(),
  stages: z.array(jobStageViewSchema),
});

/** GET /api/jobs: the most recent jobs, one summary each. */
export const jobListSchema = z.object({
  jobs: z.array(
    jobIdentity.extend({
      kind: z.enum(["upload", "refresh"]),
      tasks: z.number().int(),
      finished: z.number().int(),
      failed: z.number().int(),
      worksCached: z.number().int(),
      createdAt: z.string().nullable(),
      completedAt: z.string().nullable(),
      links: z.object({ progress: z.string() }),
    }),
  ),
});

/** POST /api/jobs/:id/retry (202): how many failed and dead tasks went round again. */
export const jobRetriedSchema = z.object({
  jobId: z.string(),
  requeued: z.number().int(),
  pending: z.number().int(),
  status: z.string(),
  links: z.object({ progress: z.string() }),
});

export const jobFailuresSchema = z.object({
  jobId: z.string(),
  failures: z.array(
    z.object({
      author: z.string(),
      authorKey: z.string(),
      status: z.string(),
      depth: z.number().int(),
      attempts: z.number().int(),
      error: z.string().nullable(),
      updatedAt: z.string(),
    }),
  ),
  nextCursor: z.string().nullable(),
});

// Both directions: the schema's output is the interface, and the interface fits the schema.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const agree = <T extends true>(_: T) => _;
agree<Same<z.infer<typeof stateCounts>, StateCounts>>(true);
agree<Same<z.infer<typeof jobCreatedSchema>, JobCreated>>(true);
agree<Same<z.infer<typeof jobProgressSchema>, JobProgress>>(true);
agree<Same<z.infer<typeof jobStageViewSchema>, JobStageView>>(true);
agree<Same<z.infer<typeof jobViewSchema>, JobView>>(true);
agree<Same<z.infer<typeof jobListSchema>["jobs"][number], ReturnType<typeof summarizeJob>>>(true);
agree<Same<z.infer<typeof jobRetriedSchema>, RedriveResult & { links: { progress: string } }>>(true);
