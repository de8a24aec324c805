import { appendLog } from "../db/lifecycle/job-log";
import { insertStagesStatement } from "../db/lifecycle/stages";

/** Written in the job's creation batch: the input's sha256, four PENDING stage rows, the first log line. */
export function lifecycleStatements(
  db: D1Database,
  jobId: string,
  inputSha256: string,
  now: number,
): D1PreparedStatement[] {
  return [
    db.prepare("UPDATE jobs SET input_sha256 = ?2 WHERE id = ?1").bind(jobId, inputSha256),
    insertStagesStatement(db, jobId),
    ...appendLog(db, jobId, { type: "operator", data: { action: "created", inputSha256 } }, now).statements,
  ];
}

/**
 * Starts the job's Workflow instance (id = job id). A failure is logged, not thrown: the job was written
 * and its messages sent, so it still warms (and the sweeper still finishes it); it only lacks the stages.
 */
export async function startLifecycle(env: Env, jobId: string): Promise<boolean> {
  try {
    await env.JOB_WORKFLOW.create({ id: jobId, params: { jobId } });
    return true;
  } catch (error) {
    console.error(JSON.stringify({ msg: "job workflow not started", jobId, error: String(error) }));
    return false;
  }
}
