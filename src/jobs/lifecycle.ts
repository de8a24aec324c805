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

const ALIVE = new Set(["queued", "running", "paused", "waiting", "waitingForPause"]);

/**
 * The sweep's lifecycle phase: every unfinished job's instance is looked up (which wakes an engine that a
 * restart of the runtime left idle) and one that ended without finishing its job (errored, terminated,
 * lost) is restarted: its gates skip the stages that already succeeded. Returns how many were restarted.
 */
export async function wakeLifecycles(env: Env, jobIds: readonly string[]): Promise<number> {
  let restarted = 0;
  for (const jobId of jobIds) {
    let status = "unknown";
    try {
      const instance = await env.JOB_WORKFLOW.get(jobId);
      status = (await instance.status()).status;
      if (ALIVE.has(status)) continue;
      await instance.restart();
      restarted++;
    } catch (error) {
      // No instance at all (created before #12, or its start failed): start one.
      if (/not.?found/i.test(String(error)) && (await startLifecycle(env, jobId))) restarted++;
      else console.error(JSON.stringify({ msg: "lifecycle not woken", jobId, status, error: String(error) }));
    }
  }
  return restarted;
}

/** The cron's lifecycle pass (after the sweep): the instances of jobs still queued, running or paused. */
export async function wakeUnfinishedLifecycles(env: Env): Promise<void> {
  const { results } = await env.DB.prepare(
    "SELECT id FROM jobs WHERE status IN ('queued', 'running', 'paused') ORDER BY created_at LIMIT 1000",
  ).all<{ id: string }>();
  const restarted = await wakeLifecycles(
    env,
    results.map((r) => r.id),
  );
  console.log(JSON.stringify({ msg: "lifecycles woken", jobs: results.length, restarted }));
}
