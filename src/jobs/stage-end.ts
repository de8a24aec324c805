import { appendLog } from "../db/lifecycle/job-log";
import { endStage, type StageEnd } from "../db/lifecycle/stage-transitions";
import { stopJob } from "../db/lifecycle/stop-job";
import { runSteps } from "../db/step";
import type { Stage } from "./stages";

/** Records a stage's end (and its log line); a FAILED stage fails the job, in the same batch. */
export async function recordStageEnd(env: Env, jobId: string, stage: Stage, end: StageEnd): Promise<void> {
  const now = Date.now();
  await runSteps(env.DB, [
    endStage(env.DB, jobId, stage, end, now),
    ...(end.status === "FAILED" ? [stopJob(env.DB, jobId, "failed", now)] : []),
    appendLog(
      env.DB,
      jobId,
      {
        type: "stage_end",
        stage,
        data: {
          status: end.status,
          ...(end.counts ? { counts: end.counts } : {}),
          ...(end.message ? { error: end.message } : {}),
          ...(end.artifact ? { artifact: end.artifact } : {}),
        },
      },
      now,
    ),
  ]);
}
