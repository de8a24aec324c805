import { Hono } from "hono";
import { z } from "zod";
import { getJob } from "../db/jobs";
import { readLog } from "../db/lifecycle/job-log";
import { runSteps } from "../db/step";
import { AppError, notFound } from "../errors";
import { artifactKey } from "../jobs/artifacts";
import { cancelJob, pauseJobById, rerunJob, resumeJobById } from "../jobs/control";
import { ARTIFACT_NAMES, manifestSchema, RERUN_FROM } from "../jobs/stages";
import { requireReader, requireToken } from "./auth";
import type { AppEnv } from "./context";
import { answers, jobLogDoc } from "./job-docs";
import { jobViewSchema } from "./job-schemas";
import { jobView } from "./job-view";
import { validate } from "./validation";

const jobIdParam = z.object({ id: z.string().uuid("job id must be a UUID") });
const rerunQuery = z.object({
  from: z.enum(RERUN_FROM, { message: `from must be one of ${RERUN_FROM.join(", ")}` }),
});
const readKey = { key: z.string().max(64).optional() };
const logQuery = z.object({
  ...readKey,
  since: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(1000).default(500),
});
const manifestQuery = z.object(readKey);

/**
 * A job's lifecycle (#12): cancel, pause, resume and rerun (admin token; each answers 200 with the job as
 * GET /api/jobs/:id shows it, or 409 when the job is finished or a stage blocks), its manifest and its
 * NDJSON log (read token or the job's read link).
 */
export const jobControlApi = new Hono<AppEnv>()
  .post(
    "/:id/cancel",
    answers("Cancel a job: its open tasks end cancelled", jobViewSchema),
    requireToken,
    validate("param", jobIdParam),
    async (c) => {
      const { id } = c.req.valid("param");
      await cancelJob(c.env, id);
      return c.json(await jobView(c.env.DB, id));
    },
  )
  .post(
    "/:id/pause",
    answers("Pause a job", jobViewSchema),
    requireToken,
    validate("param", jobIdParam),
    async (c) => {
      const { id } = c.req.valid("param");
      await pauseJobById(c.env, id);
      return c.json(await jobView(c.env.DB, id));
    },
  )
  .post(
    "/:id/resume",
    answers("Resume a paused job", jobViewSchema),
    requireToken,
    validate("param", jobIdParam),
    async (c) => {
      const { id } = c.req.valid("param");
      await resumeJobById(c.env, id);
      return c.json(await jobView(c.env.DB, id));
    },
  )
  .post(
    "/:id/rerun",
    answers("Run a job again from a stage", jobViewSchema),
    requireToken,
    validate("param", jobIdParam),
    validate("query", rerunQuery),
    async (c) => {
      const { id } = c.req.valid("param");
      await rerunJob(c.env, id, c.req.valid("query").from);
      return c.json(await jobView(c.env.DB, id));
    },
  )
  .get(
    "/:id/manifest",
    answers("A job's manifest (written by publish, or by a cancel)", manifestSchema),
    requireReader,
    validate("param", jobIdParam),
    validate("query", manifestQuery),
    async (c) => {
      const { id } = c.req.valid("param");
      if (!(await getJob(c.env.DB, id))) throw notFound("Job", id);
      const object = await c.env.ARTIFACTS.get(artifactKey(id, ARTIFACT_NAMES.publish));
      if (!object)
        throw new AppError({
          code: "manifest_not_published",
          message: `job ${id} has no manifest yet (it is written by the publish stage, or by a cancel)`,
          httpStatus: 404,
          kind: "permanent",
        });
      return new Response(object.body, { headers: { "Content-Type": "application/json" } });
    },
  )
  .get(
    "/:id/log",
    jobLogDoc,
    requireReader,
    validate("param", jobIdParam),
    validate("query", logQuery),
    async (c) => {
      const { id } = c.req.valid("param");
      const { since, limit } = c.req.valid("query");
      if (!(await getJob(c.env.DB, id))) throw notFound("Job", id);
      const [lines] = await runSteps(c.env.DB, [readLog(c.env.DB, id, since, limit)]);
      const last = lines.at(-1)?.id ?? since;
      c.header("Content-Type", "application/x-ndjson; charset=utf-8");
      // The cursor for the next call (`?since=`), also each line's `id`.
      c.header("X-Next-Since", String(last));
      return c.body(lines.map((l) => `${JSON.stringify(l)}\n`).join(""));
    },
  );
