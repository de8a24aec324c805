import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config";
import worker from "../../src/index";
import { sweep } from "../../src/warm/sweeper";
import { jobRow, resetAll, taskCounts } from "../support/db";
import { waitForJob } from "../support/http";
import { seedJob } from "../support/jobs";

const config = () => loadConfig(env);
const HOUR = 3_600_000;

describe("cron sweep", () => {
  beforeEach(resetAll);

  it("admits tasks left pending (through admission, not a blind re-send) and the job completes", async () => {
    const { jobId } = await seedJob(["Ada Writer", "Bea Writer"], 0);
    await env.DB.prepare("UPDATE tasks SET status = 'pending' WHERE job_id = ?1").bind(jobId).run();
    const report = await sweep(env, { config: config(), now: () => Date.now() });
    expect(report).toMatchObject({ resent: 0, admitted: 2 });
    const done = (await waitForJob(jobId)) as { status: string };
    expect(done.status).toBe("completed");
    expect(await taskCounts(jobId)).toEqual({ done: 2 });
  });

  it("re-sends the open tasks of a job where nothing moved for STALL_SECONDS (lost messages)", async () => {
    const { jobId } = await seedJob(["Ada Writer", "Bea Writer", "Cy Writer"], 0);
    // Seeded tasks are queued but no message was ever sent: exactly what a lost message looks like.
    expect((await sweep(env, { config: config(), now: () => Date.now() + 60_000 })).resent).toBe(0);
    const report = await sweep(env, { config: config(), now: () => Date.now() + HOUR });
    expect(report.resent).toBe(3);
    expect(((await waitForJob(jobId)) as { status: string }).status).toBe("completed");
  });

  it("marks dead the tasks that used every delivery but never reached the dead-letter consumer", async () => {
    const { jobId } = await seedJob(["Ada Writer"], 0);
    await env.DB.prepare(
      "UPDATE tasks SET attempts = 4, failures = 4, error = 'upstream_unavailable: 500' WHERE job_id = ?1",
    )
      .bind(jobId)
      .run();
    const report = await sweep(env, { config: config(), now: () => Date.now() + 2 * HOUR });
    expect(report.markedDead).toBe(1);
    expect(await jobRow(jobId)).toMatchObject({ status: "completed_with_errors", dead_count: 1 });
    const task = await env.DB.prepare("SELECT error FROM tasks WHERE job_id = ?1")
      .bind(jobId)
      .first<{ error: string }>();
    expect(task?.error).toMatch(/retries exhausted after 4 attempts; last error: upstream_unavailable: 500/);
  });

  it("completes a job whose tasks are all terminal, from the scheduled handler", async () => {
    const { jobId } = await seedJob(["Ada Writer"], 0);
    await env.DB.batch([
      env.DB.prepare("UPDATE tasks SET status = 'done' WHERE job_id = ?1").bind(jobId),
      env.DB.prepare("UPDATE jobs SET done_count = 1, status = 'running' WHERE id = ?1").bind(jobId),
    ]);
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ cron: "*/5 * * * *" }), env, ctx);
    await waitOnExecutionContext(ctx);
    expect((await jobRow(jobId))?.status).toBe("completed");
  });
});
