import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config";
import { readmitStalled, watchWarm } from "../../src/jobs/warm-stage";
import { resetAll, taskCounts } from "../support/db";
import { drainQueues, trackingEnv, trackJob } from "../support/drain";
import { seedJob } from "../support/jobs";

const config = loadConfig({ ...env, WARM_STALL_SECONDS: "60", WARM_WATCH_SECONDS: "1", WARM_POLL_MS: "100" });

/** Makes the job and its tasks look as if nothing had moved for `seconds`. */
async function backdate(jobId: string, seconds: number): Promise<void> {
  const at = Date.now() - seconds * 1000;
  await env.DB.batch([
    env.DB.prepare("UPDATE jobs SET updated_at = ?2, created_at = ?2 WHERE id = ?1").bind(jobId, at),
    env.DB.prepare("UPDATE tasks SET updated_at = ?2 WHERE job_id = ?1").bind(jobId, at),
  ]);
}

describe("the warm stage's watch", () => {
  beforeEach(resetAll);

  it("notices a job whose messages were lost and re-admits its open tasks, which then finish", async () => {
    // Tasks written queued whose messages never reached the queue (a worker that died after its D1 batch).
    const { jobId } = await seedJob(["Peter Frankopan", "Mary Beard"], 0);
    await backdate(jobId, 120);
    expect(await watchWarm(env, jobId, config)).toEqual({ state: "stalled" });

    trackJob(jobId);
    expect(await readmitStalled(trackingEnv(env), jobId, config)).toBe(2);
    await drainQueues();
    expect(await taskCounts(jobId)).toEqual({ done: 2 });
    expect(await watchWarm(env, jobId, config)).toEqual({ state: "done" });
  });

  it("keeps waiting while the job moves, and never calls a paused job stalled", async () => {
    const { jobId } = await seedJob(["Peter Frankopan"], 0);
    // Open, but its job row moved just now: no re-admission.
    expect(await watchWarm(env, jobId, config)).toEqual({ state: "waiting" });
    expect(await readmitStalled(env, jobId, config)).toBe(0);

    await backdate(jobId, 120);
    await env.DB.prepare("UPDATE jobs SET status = 'paused' WHERE id = ?1").bind(jobId).run();
    expect(await watchWarm(env, jobId, config)).toEqual({ state: "waiting" });
    // The re-admission itself refuses a paused job's tasks too.
    expect(await readmitStalled(env, jobId, config)).toBe(0);
    expect(await taskCounts(jobId)).toEqual({ queued: 1 });
  });
});
