import { describeRoute, resolver } from "hono-openapi";
import type { z } from "zod";
import { jobCreatedSchema, jobRetriedSchema } from "./job-schemas";

/** OpenAPI description of a token-protected job route answering `schema` with 200. */
export const answers = (summary: string, schema: z.ZodType) =>
  describeRoute({
    tags: ["jobs"],
    summary,
    security: [{ bearer: [] }],
    responses: {
      200: { description: summary, content: { "application/json": { schema: resolver(schema) } } },
    },
  });

const binary = { type: "string" as const, format: "binary" };

/** The 429's body: the error envelope with the estimate in `details`. */
const backlogFullSchema = {
  type: "object" as const,
  required: ["error"],
  properties: {
    error: {
      type: "object" as const,
      required: ["code", "message", "details"],
      properties: {
        code: { type: "string" as const, enum: ["backlog_full"] },
        message: { type: "string" as const },
        details: {
          type: "object" as const,
          properties: {
            backlogSeconds: { type: "integer" as const },
            limitSeconds: { type: "integer" as const },
            priority: { type: "string" as const, enum: ["low", "normal", "high"] },
            openTasks: { type: "integer" as const },
            openJobs: { type: "integer" as const },
            estimatedRequests: { type: "integer" as const },
            requestsPerTask: { type: "number" as const },
            requestsPerSecond: { type: "number" as const },
            retryAfterSeconds: { type: "integer" as const },
          },
        },
      },
    },
  },
};

/** POST /api/jobs: the three upload forms (read and validated by src/ingest, not by a validator). */
export const jobCreatedDoc = describeRoute({
  tags: ["jobs"],
  summary: "Upload a Goodreads or StoryGraph export: creates a warming job",
  security: [{ bearer: [] }],
  requestBody: {
    required: true,
    content: {
      "text/csv": { schema: binary },
      "multipart/form-data": {
        schema: {
          type: "object",
          properties: { file: binary, maxDepth: { type: "string" }, priority: { type: "string" } },
        },
      },
      "application/json": {
        schema: {
          type: "object",
          required: ["csv"],
          properties: {
            csv: { type: "string", description: "base64" },
            maxDepth: { type: "integer" },
            priority: { type: "string" },
          },
        },
      },
    },
  },
  responses: {
    200: {
      description: "The same job again (same Idempotency-Key and file)",
      content: { "application/json": { schema: resolver(jobCreatedSchema) } },
    },
    202: {
      description: "Job created",
      content: { "application/json": { schema: resolver(jobCreatedSchema) } },
    },
    429: {
      description:
        "backlog_full: the open jobs' work would take longer than BACKLOG_LIMIT_SECONDS to drain at the provider's rate (`high`: plus BACKLOG_HIGH_BYPASS_SECONDS); nothing was stored",
      headers: {
        "Retry-After": {
          description: "Seconds until the backlog is estimated to be back under the limit",
          schema: { type: "integer" },
        },
      },
      content: { "application/json": { schema: backlogFullSchema } },
    },
  },
});

/** GET /api/jobs/:id/log: NDJSON, one log line per line, with the cursor for the next call in a header. */
export const jobLogDoc = describeRoute({
  tags: ["jobs"],
  summary: "A job's log as NDJSON, oldest first, after `since`",
  security: [{ bearer: [] }],
  responses: {
    200: {
      description: "One JSON object per line: {id, at, type, stage, …the line's data}",
      headers: {
        "X-Next-Since": { description: "The `since` for the next call", schema: { type: "string" } },
      },
      content: { "application/x-ndjson": { schema: { type: "string" } } },
    },
  },
});

/** POST /api/jobs/:id/retry: 202 with what went round again. */
export const jobRetriedDoc = describeRoute({
  tags: ["jobs"],
  summary: "Send a job's failed and dead tasks round again",
  security: [{ bearer: [] }],
  responses: {
    202: {
      description: "The tasks were re-opened",
      content: { "application/json": { schema: resolver(jobRetriedSchema) } },
    },
  },
});
