import type { Config } from "../config";
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

export interface UnfinishedJob {
  id: string;
  /** Its running stage has shown no sign of life for longer than a stage step may take. */
  quiet: boolean;
}

/**
 * The cron's lifecycle pass: each unfinished job's instance is looked up; one that ended without finishing
 * its job (errored, terminated) or that says it runs while its running stage has gone quiet (a runtime
 * restart leaves a local engine idle mid-step) is restarted: its gates skip the stages that succeeded and
 * warm re-admits what the restart lost. A job without an instance gets one. Returns how many were (re)started.
 */
export async function wakeLifecycles(env: Env, jobs: readonly UnfinishedJob[]): Promise<number> {
  let restarted = 0;
  for (const job of jobs) {
    let status = "unknown";
    try {
      const instance = await env.JOB_WORKFLOW.get(job.id);
      status = (await instance.status()).status;
      if (ALIVE.has(status) && !job.quiet) continue;
      await instance.restart();
      restarted++;
      console.log(JSON.stringify({ msg: "job workflow restarted", jobId: job.id, status, quiet: job.quiet }));
    } catch (error) {
      if (/not.?found/i.test(String(error)) && (await startLifecycle(env, job.id))) restarted++;
      else
        console.error(
          JSON.stringify({ msg: "lifecycle not woken", jobId: job.id, status, error: String(error) }),
        );
    }
  }
  return restarted;
}

/** A running stage quiet for this long is stuck (warm beats every WARM_WATCH_SECONDS; others take seconds). */
const QUIET_MS = (config: Config) => Math.max(120_000, 4 * config.WARM_WATCH_SECONDS * 1000);

/** The cron's lifecycle pass (after the sweep): the instances of jobs still queued, running or paused. */
export async function wakeUnfinishedLifecycles(env: Env, config: Config, now: number): Promise<void> {
  const { results } = await env.DB.prepare(
    `SELECT j.id, MAX(COALESCE(s.heartbeat_at, s.started_at)) AS beat FROM jobs AS j
       LEFT JOIN job_stages AS s ON s.job_id = j.id AND s.status = 'RUNNING'
     WHERE j.status IN ('queued', 'running', 'paused') GROUP BY j.id ORDER BY j.created_at LIMIT 1000`,
  ).all<{ id: string; beat: number | null }>();
  const jobs = results.map((r) => ({ id: r.id, quiet: r.beat !== null && now - r.beat > QUIET_MS(config) }));
  const restarted = await wakeLifecycles(env, jobs);
  console.log(JSON.stringify({ msg: "lifecycles woken", jobs: jobs.length, restarted }));
}
