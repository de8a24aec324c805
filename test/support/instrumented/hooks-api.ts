import { Hono } from "hono";
import { z } from "zod";
import { validate } from "../../../src/api/validation";
import { AppError } from "../../../src/errors";
import { auditJob } from "./audit";
import { counters, modes, resetCounters } from "./counters";

const modesPatch = z
  .object({
    producer: z.enum(["kindling", "naive"]),
    consumer: z.enum(["kindling", "naive"]),
    crashRate: z.number().min(0).max(1),
    duplicateDelivery: z.boolean(),
  })
  .partial()
  .strict();

const auditParam = z.object({ jobId: z.string().uuid() });
const auditQuery = z.object({
  offset: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(0).max(2000).default(500),
});

const seedBody = z.object({
  tasks: z.number().int().min(1).max(200_000),
  maxDepth: z.number().int().min(0).max(3).default(2),
});

/**
 * Benchmark and chaos hooks: counters of billable operations, runtime modes, and a seeded job. Served only
 * by the instrumented entry (`entry.ts`); the production worker has no such routes.
 */
export const testHooksApi = new Hono<{ Bindings: Env }>()
  .basePath("/__test")
  .onError((error, c) => {
    const status = error instanceof AppError ? error.httpStatus : 500;
    const code = error instanceof AppError ? error.code : "internal_error";
    return c.json({ error: { code, message: error.message } }, status as 400);
  })
  .get("/counters", (c) => c.json(counters))
  .delete("/counters", (c) => {
    resetCounters();
    return c.json(counters);
  })
  .get("/modes", (c) => c.json(modes))
  .post("/modes", validate("json", modesPatch), (c) => {
    Object.assign(modes, c.req.valid("json"));
    return c.json(modes);
  })
  .get("/audit/:jobId", validate("param", auditParam), validate("query", auditQuery), async (c) => {
    const { offset, limit } = c.req.valid("query");
    return c.json(await auditJob(c.env, c.req.valid("param").jobId, { offset, limit }));
  })
  .post("/seed-job", validate("json", seedBody), async (c) => {
    const { tasks, maxDepth } = c.req.valid("json");
    const jobId = crypto.randomUUID();
    const now = Date.now();
    // A job whose tasks are spread over every state and depth, as a large job looks mid-run.
    await c.env.DB.batch([
      c.env.DB.prepare(
        `INSERT INTO jobs (id, status, max_depth, priority, format, request_hash, rows_total, root_tasks, total_tasks,
           done_count, skipped_count, failed_count, dead_count, works_cached, created_at, started_at, updated_at)
         VALUES (?1, 'running', ?2, 'normal', 'generic', 'seeded', ?3, ?3, ?3, 0, 0, 0, 0, 0, ?4, ?4, ?4)`,
      ).bind(jobId, maxDepth, tasks, now),
      c.env.DB.prepare(
        `WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n + 1 < ?2)
         INSERT INTO tasks (job_id, author_key, author_name, depth, status, attempts, created_at, updated_at)
         SELECT ?1, 'seeded author ' || n, 'Seeded Author ' || n, n % (?3 + 1),
           CASE n % 10 WHEN 0 THEN 'pending' WHEN 1 THEN 'queued' WHEN 2 THEN 'running' WHEN 3 THEN 'skipped'
             WHEN 4 THEN 'failed' ELSE 'done' END, 1, ?4, ?4
         FROM seq`,
      ).bind(jobId, tasks, maxDepth, now),
      c.env.DB.prepare(
        `UPDATE jobs SET
           done_count = (SELECT COUNT(*) FROM tasks WHERE job_id = ?1 AND status = 'done'),
           skipped_count = (SELECT COUNT(*) FROM tasks WHERE job_id = ?1 AND status = 'skipped'),
           failed_count = (SELECT COUNT(*) FROM tasks WHERE job_id = ?1 AND status = 'failed')
         WHERE id = ?1`,
      ).bind(jobId),
    ]);
    return c.json({ jobId, tasks }, 201);
  });
