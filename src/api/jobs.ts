import { Hono } from "hono";
import { z } from "zod";
import { getJob, listRecentJobs } from "../db/jobs";
import { bumpReadLinkVersion } from "../db/read-links";
import { listFailures } from "../db/tasks";
import { badRequest, notFound } from "../errors";
import { rerunAfterRedrive } from "../jobs/control";
import { redriveJob } from "../warm/redrive";
import { acceptUpload } from "./accept-upload";
import { jobReadLinks, requireReader, requireToken } from "./auth";
import type { AppEnv } from "./context";
import { answers, jobCreatedDoc, jobRetriedDoc } from "./job-docs";
import { jobFailuresSchema, jobListSchema, jobViewSchema } from "./job-schemas";
import { jobView } from "./job-view";
import { summarizeJob } from "./progress";
import { providerQuotas } from "./quotas";
import { validate } from "./validation";

/** A job's read link carries `?key=`; the guard checks it, the routes accept it. */
const readKeyQuery = { key: z.string().max(64).optional() };
const jobIdParam = z.object({ id: z.string().uuid("job id must be a UUID") });
const idempotencyHeader = z.object({
  "idempotency-key": z.string().min(1).max(200, "Idempotency-Key is at most 200 characters").optional(),
});
const failuresQuery = z.object({
  ...readKeyQuery,
  limit: z.coerce.number().int().min(1).max(500).default(100),
  cursor: z.string().max(1024).optional(),
});
const listQuery = z.object({ limit: z.coerce.number().int().min(1).max(100).default(20) });
/** Upload options arrive in the query (raw CSV), form fields or JSON; readUpload validates all three. */
const uploadQuery = z.object({
  maxDepth: z.string().optional(),
  priority: z.string().optional(),
  filename: z.string().max(255).optional(),
});

export const jobsApi = new Hono<AppEnv>()
  .post(
    "/",
    jobCreatedDoc,
    requireToken,
    validate("header", idempotencyHeader),
    validate("query", uploadQuery),
    (c) => acceptUpload(c, c.req.valid("header")["idempotency-key"] ?? null),
  )
  .get(
    "/",
    answers("The most recent jobs", jobListSchema),
    requireReader,
    validate("query", listQuery),
    async (c) => {
      const jobs = await listRecentJobs(c.env.DB, c.req.valid("query").limit);
      return c.json({ jobs: jobs.map(summarizeJob) });
    },
  )
  .get(
    "/:id",
    answers("A job's progress, stages and quotas", jobViewSchema),
    requireReader,
    validate("param", jobIdParam),
    validate("query", z.object(readKeyQuery)),
    // The progress, the lifecycle (`stage`, `stages`: job-view.ts) and the providers' daily quotas.
    async (c) => {
      const { id } = c.req.valid("param");
      const [view, quotas] = await Promise.all([jobView(c.env.DB, id), providerQuotas(c.env, c.var.config)]);
      return c.json({ ...view, quotas });
    },
  )
  .post("/:id/retry", jobRetriedDoc, requireToken, validate("param", jobIdParam), async (c) => {
    const result = await redriveJob(c.env, c.req.valid("param").id, Date.now());
    await rerunAfterRedrive(c.env, result.jobId);
    return c.json({ ...result, links: { progress: `/api/jobs/${result.jobId}` } }, 202);
  })
  .post("/:id/read-link", requireToken, validate("param", jobIdParam), async (c) => {
    const { id } = c.req.valid("param");
    const version = await bumpReadLinkVersion(c.env.DB, id);
    if (version === null) throw notFound("Job", id);
    return c.json({
      jobId: id,
      revoked: "every earlier read link of this job",
      links: await jobReadLinks(c.var.config, id, version),
    });
  })
  .get(
    "/:id/failures",
    answers("A job's failed and dead tasks, paginated", jobFailuresSchema),
    requireReader,
    validate("param", jobIdParam),
    validate("query", failuresQuery),
    async (c) => {
      const { id } = c.req.valid("param");
      const { limit, cursor } = c.req.valid("query");
      const job = await getJob(c.env.DB, id);
      if (!job) throw notFound("Job", id);
      let after: string | null = null;
      if (cursor) {
        try {
          after = decodeURIComponent(atob(cursor));
        } catch {
          throw badRequest("invalid_cursor", "cursor must be a value returned as nextCursor");
        }
      }
      const rows = await listFailures(c.env.DB, id, limit, after);
      const last = rows.at(-1);
      return c.json({
        jobId: id,
        failures: rows.map((t) => ({
          author: t.author_name,
          authorKey: t.author_key,
          status: t.status,
          depth: t.depth,
          attempts: t.attempts,
          error: t.error,
          updatedAt: new Date(t.updated_at).toISOString(),
        })),
        nextCursor: rows.length === limit && last ? btoa(encodeURIComponent(last.author_key)) : null,
      });
    },
  );
