import { Hono } from "hono";
import { describeRoute, resolver } from "hono-openapi";
import { z } from "zod";
import { AnalyticsQueries, eventsBackend } from "../analytics/queries";
import * as schemas from "../analytics/schemas";
import { requireReader } from "./auth";
import type { AppEnv } from "./context";
import { validate } from "./validation";

const hoursQuery = z.object({
  hours: z.coerce
    .number()
    .int()
    .min(1)
    .max(24 * 30)
    .default(24)
    .describe("Window length in whole hours, ending with the current hour (1–720)"),
});

const minutesQuery = z.object({
  minutes: z.coerce
    .number()
    .int()
    .min(1)
    .max(24 * 60)
    .default(60)
    .describe("Window length in whole minutes, ending with the current minute (1–1440)"),
});

const daysQuery = z.object({
  days: z.coerce.number().int().min(1).max(90).default(7).describe("Window length in whole UTC days (1–90)"),
});

/** The overview's upstream chart: the last hour, per minute. */
const OVERVIEW_MINUTES = 60;

/** OpenAPI description of a read-token route answering `schema`. */
const described = (summary: string, schema: z.ZodType) =>
  describeRoute({
    tags: ["analytics"],
    summary,
    security: [{ bearer: [] }],
    responses: {
      200: { description: summary, content: { "application/json": { schema: resolver(schema) } } },
      401: { description: "Missing or wrong token" },
    },
  });

/**
 * The analytics API: named queries over one layer (src/analytics), D1 or Analytics Engine behind it, the
 * same shapes from both. Each answer is checked against its schema before it leaves.
 */
export function analyticsApi(analyticsFetch?: typeof fetch) {
  const queries = (env: Env, config: AppEnv["Variables"]["config"]) =>
    new AnalyticsQueries(eventsBackend(env, config, analyticsFetch), env.DB, config, env.WARM_QUEUE);
  return new Hono<AppEnv>()
    .use(requireReader)
    .get(
      "/overview",
      described("Everything the dashboard's overview shows", schemas.overview),
      validate("query", hoursQuery),
      async (c) => {
        const { hours } = c.req.valid("query");
        const q = queries(c.env, c.var.config);
        const now = Date.now();
        const [throughput, failures, cache, dlq, backlog, upstream] = await Promise.all([
          q.throughput(hours, now),
          q.failures(hours, now),
          q.cache(hours, now),
          q.dlq(),
          q.backlog(),
          q.upstream(OVERVIEW_MINUTES, now),
        ]);
        return c.json(
          schemas.overview.parse({
            backend: throughput.backend,
            throughput,
            failures,
            cache,
            dlq,
            backlog,
            upstream,
          }),
        );
      },
    )
    .get(
      "/quota-used",
      described("Requests per provider per UTC day beside the daily quota", schemas.quotaUsedSeries),
      validate("query", daysQuery),
      async (c) => {
        const q = queries(c.env, c.var.config);
        return c.json(
          schemas.quotaUsedSeries.parse(await q.quotaUsed(c.req.valid("query").days, Date.now())),
        );
      },
    )
    .get(
      "/upstream",
      described("Upstream requests, errors and 429s per provider per minute", schemas.upstreamSeries),
      validate("query", minutesQuery),
      async (c) => {
        const q = queries(c.env, c.var.config);
        return c.json(
          schemas.upstreamSeries.parse(await q.upstream(c.req.valid("query").minutes, Date.now())),
        );
      },
    )
    .get(
      "/throughput",
      described("Authors processed and works cached per hour (seed 001)", schemas.throughputSeries),
      validate("query", hoursQuery),
      async (c) => {
        const q = queries(c.env, c.var.config);
        return c.json(
          schemas.throughputSeries.parse(await q.throughput(c.req.valid("query").hours, Date.now())),
        );
      },
    )
    .get(
      "/failures",
      described("Failures, retries and upstream requests per hour", schemas.failuresSeries),
      validate("query", hoursQuery),
      async (c) => {
        const q = queries(c.env, c.var.config);
        return c.json(schemas.failuresSeries.parse(await q.failures(c.req.valid("query").hours, Date.now())));
      },
    )
    .get(
      "/cache",
      described("Read-API cache hit rate per hour", schemas.cacheSeries),
      validate("query", hoursQuery),
      async (c) => {
        const q = queries(c.env, c.var.config);
        return c.json(schemas.cacheSeries.parse(await q.cache(c.req.valid("query").hours, Date.now())));
      },
    )
    .get("/dlq", described("Dead-letter depth and its alert", schemas.dlqDepth), async (c) =>
      c.json(schemas.dlqDepth.parse(await queries(c.env, c.var.config).dlq())),
    )
    .get("/backlog", described("Warm queue backlog and open tasks", schemas.backlog), async (c) =>
      c.json(schemas.backlog.parse(await queries(c.env, c.var.config).backlog())),
    );
}
