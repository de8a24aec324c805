import { appendLog } from "../db/lifecycle/job-log";
import { endStage, type StageEnd } from "../db/lifecycle/stage-transitions";
import { listStages } from "../db/lifecycle/stages";
import { stopJob } from "../db/lifecycle/stop-job";
import { runSteps } from "../db/step";
import type { Stage } from "./stages";

/**
 * Records a stage's end (and its log line); a FAILED stage fails the job, in the same batch. Only the run
 * that started the stage (`startedAt`, from its gate) may end it: after a redrive or rerun reset the stage,
 * a late end from the run before (a verify that saw the re-opened tasks, say) must not fail the job and
 * cancel the tasks just sent round again. A step retried after its batch committed finds the stage ended
 * and writes nothing twice.
 */
export async function recordStageEnd(
  env: Env,
  jobId: string,
  stage: Stage,
  end: StageEnd,
  startedAt: number,
): Promise<void> {
  const [rows] = await runSteps(env.DB, [listStages(env.DB, jobId)]);
  const row = rows.find((r) => r.stage === stage);
  if (row?.status !== "RUNNING" || row.started_at !== startedAt) {
    console.log(
      JSON.stringify({ msg: "stale stage end ignored", jobId, stage, status: end.status, startedAt, row }),
    );
    return;
  }
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
