import { readJobStates } from "../../db/job-states";
import { runSteps } from "../../db/step";
import { finishTasks } from "../../db/tasks";
import type { Priority } from "../../sources/grant-scheduler";
import { taskId } from "../messages";
import type { Intake } from "./intake";

type JobState = { status: string; priority: Priority };
const HELD = new Set(["paused", "cancelled", "failed"]);

/**
 * Job states this isolate read in the last STATE_TTL_MS: a busy job's batches share one D1 read a second
 * instead of paying one each. An operator's cancel or pause is therefore seen within a second (plus the
 * batch already past this check), well inside the 5 s the API promises. Held states are never reused.
 */
const STATE_TTL_MS = 1000;
const seen = new Map<string, JobState & { at: number }>();

async function jobStatuses(
  db: D1Database,
  jobIds: readonly string[],
  now: number,
): Promise<Map<string, JobState>> {
  const statuses = new Map<string, JobState>();
  const stale: string[] = [];
  for (const id of jobIds) {
    const cached = seen.get(id);
    if (cached && now - cached.at < STATE_TTL_MS) statuses.set(id, cached);
    else stale.push(id);
  }
  if (stale.length === 0) return statuses;
  const [rows] = await runSteps(db, [readJobStates(db, stale)]);
  if (seen.size > 1000) seen.clear();
  for (const row of rows) {
    statuses.set(row.id, { status: row.status, priority: row.priority });
    // Only a running job's state is reused: a held one is read again, so a resume is seen at once (its
    // fresh messages must not be parked on a stale "paused").
    if (!HELD.has(row.status)) seen.set(row.id, { status: row.status, priority: row.priority, at: now });
  }
  return statuses;
}

/**
 * The job-state check, before anything is claimed or fetched: messages of a paused job are parked (acked,
 * their tasks left open: resume re-admits them with a new generation), and messages of a cancelled or
 * failed job close their task as `cancelled` (a co-author row written after the cancel, say), counted in
 * the same statements. At most one D1 read per job per second and isolate; a write only when a stopped
 * job's message arrives. A failed
 * read lets the batch through (the cancel already closed the job's open tasks, so their writes are refused).
 * Returns each job's priority, read in the same statement, for the provider scheduler (a job missing
 * from it, as after a failed read, asks as normal).
 */
export async function holdStoppedJobs(
  db: D1Database,
  intake: Intake,
  now: number,
): Promise<Map<string, Priority>> {
  const jobIds = [...new Set([...intake.primaries.values()].map((d) => d.body.jobId))];
  let states: Map<string, JobState>;
  try {
    states = await jobStatuses(db, jobIds, now);
  } catch (error) {
    console.error(JSON.stringify({ msg: "job-state check failed", error: String(error) }));
    return new Map();
  }
  const priorities = new Map([...states].map(([id, state]) => [id, state.priority]));
  const statuses = new Map([...states].map(([id, state]) => [id, state.status]));
  const held = [...intake.primaries.values()].filter((d) => HELD.has(statuses.get(d.body.jobId) ?? ""));
  if (held.length === 0) return priorities;
  const stopped = held.filter((d) => statuses.get(d.body.jobId) !== "paused");
  if (stopped.length > 0) {
    const closes = stopped.map((d) => ({
      jobId: d.body.jobId,
      authorKey: d.body.authorKey,
      status: "cancelled" as const,
      error: `job ${statuses.get(d.body.jobId)}`,
    }));
    try {
      await runSteps(db, [finishTasks(db, closes, now)]);
    } catch (error) {
      // Left open: the next copy, or a repeated cancel, closes them.
      console.error(JSON.stringify({ msg: "closing a stopped job's tasks failed", error: String(error) }));
    }
  }
  for (const d of held) intake.drop(taskId(d.body));
  console.log(
    JSON.stringify({
      msg: "messages held by job state",
      parked: held.length - stopped.length,
      closed: stopped.length,
    }),
  );
  return priorities;
}
