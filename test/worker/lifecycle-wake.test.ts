import { introspectWorkflow } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { insertStagesStatement } from "../../src/db/lifecycle/stages";
import { wakeLifecycles } from "../../src/jobs/lifecycle";
import { resetAll } from "../support/db";
import { seedJob } from "../support/jobs";
import { stageRows } from "../support/lifecycle";

describe("the cron's lifecycle pass", () => {
  beforeEach(resetAll);

  it("starts an instance for an unfinished job that has none", async () => {
    // A job written without its instance (a failed start, or a job from before Workflows) and without its
    // upload in R2: the new instance runs ingest, whose first check names what is missing.
    const { jobId } = await seedJob(["Peter Frankopan"], 0);
    await env.DB.batch([insertStagesStatement(env.DB, jobId)]);
    const introspector = await introspectWorkflow(env.JOB_WORKFLOW);
    try {
      expect(await wakeLifecycles(env, [{ id: jobId, quiet: false }])).toBe(1);
      const [instance] = await introspector.get();
      await instance?.waitForStatus("complete");
      expect(await instance?.getOutput()).toMatchObject({ stage: "ingest", outcome: "FAILED" });
      const [ingest] = await stageRows(jobId);
      expect(ingest).toMatchObject({ stage: "ingest", status: "FAILED" });
      expect(ingest?.message).toContain("input_stored");
      // The gate failed the job: the cron no longer counts it as unfinished.
      expect(
        (await env.DB.prepare("SELECT status FROM jobs WHERE id = ?1").bind(jobId).first())?.status,
      ).toBe("failed");
    } finally {
      await introspector.dispose();
    }
  });
});
