import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { resetStagesFrom } from "../../src/db/lifecycle/stage-transitions";
import { runSteps } from "../../src/db/step";
import { redriveTasks } from "../../src/db/tasks";
import { beginStage, decideGate } from "../../src/jobs/gate";
import { lifecycleStatements } from "../../src/jobs/lifecycle";
import { recordStageEnd } from "../../src/jobs/stage-end";
import { jobRow, resetAll, taskCounts } from "../support/db";
import { seedJob } from "../support/jobs";
import { logLines, stageRows } from "../support/lifecycle";

/** A job whose verify stage is running (as its gate left it), with one open task. */
async function jobInVerify(): Promise<{ jobId: string; startedAt: number }> {
  const { jobId } = await seedJob(["Stale End Writer"], 0);
  await env.DB.batch(lifecycleStatements(env.DB, jobId, "0".repeat(64), Date.now()));
  return { jobId, startedAt: await beginStage(env, jobId, "verify") };
}

const failedVerify = { status: "FAILED" as const, message: "verify_invariants: counters differ" };

describe("a stage's end is recorded only by the run that started it", () => {
  beforeEach(resetAll);

  it("a late FAILED end, after a redrive reset the stage, leaves the job and its re-opened tasks alone", async () => {
    const { jobId, startedAt } = await jobInVerify();
    await runSteps(env.DB, [resetStagesFrom(env.DB, jobId, ["warm", "verify", "publish"])]);
    await recordStageEnd(env, jobId, "verify", failedVerify, startedAt);
    expect((await stageRows(jobId)).find((r) => r.stage === "verify")).toMatchObject({ status: "PENDING" });
    expect((await jobRow(jobId))?.status).not.toBe("failed");
    expect(await taskCounts(jobId)).toEqual({ queued: 1 });
  });

  it("an end from an older start of the same stage is ignored too", async () => {
    const { jobId, startedAt } = await jobInVerify();
    await new Promise((resolve) => setTimeout(resolve, 5));
    await beginStage(env, jobId, "verify");
    await recordStageEnd(env, jobId, "verify", failedVerify, startedAt);
    expect((await stageRows(jobId)).find((r) => r.stage === "verify")).toMatchObject({ status: "RUNNING" });
    expect((await jobRow(jobId))?.status).not.toBe("failed");
  });

  it("the current run's FAILED end fails the job and closes its tasks; a retried step writes nothing twice", async () => {
    const { jobId, startedAt } = await jobInVerify();
    await recordStageEnd(env, jobId, "verify", failedVerify, startedAt);
    expect((await stageRows(jobId)).find((r) => r.stage === "verify")).toMatchObject({
      status: "FAILED",
      message: failedVerify.message,
    });
    expect((await jobRow(jobId))?.status).toBe("failed");
    expect(await taskCounts(jobId)).toEqual({ cancelled: 1 });
    const ends = async () => (await logLines(jobId)).filter((l) => l.type === "stage_end").length;
    const before = await ends();
    await recordStageEnd(env, jobId, "verify", failedVerify, startedAt);
    expect(await ends()).toBe(before);
  });

  it("a redrive resets the later stages in its own batch, so the run before can neither end nor gate them", async () => {
    const { jobId, startedAt } = await jobInVerify();
    await env.DB.batch([
      env.DB.prepare(
        "UPDATE job_stages SET status = 'SUCCESS' WHERE job_id = ?1 AND stage IN ('ingest', 'warm')",
      ).bind(jobId),
      env.DB.prepare("UPDATE tasks SET status = 'dead' WHERE job_id = ?1").bind(jobId),
      env.DB.prepare("UPDATE jobs SET dead_count = 1, status = 'completed_with_errors' WHERE id = ?1").bind(
        jobId,
      ),
    ]);
    const [reopened] = await runSteps(env.DB, [redriveTasks(env.DB, jobId, Date.now())]);
    expect(reopened).toHaveLength(1);
    expect((await stageRows(jobId)).map((r) => `${r.stage}:${r.status}`)).toEqual([
      "ingest:SUCCESS",
      "warm:PENDING",
      "verify:PENDING",
      "publish:PENDING",
    ]);
    await recordStageEnd(env, jobId, "verify", failedVerify, startedAt);
    expect(await decideGate(env, jobId, "publish")).toMatchObject({ action: "stop" });
    expect((await jobRow(jobId))?.status).toBe("running");
    expect(await taskCounts(jobId)).toEqual({ pending: 1 });
  });
});
