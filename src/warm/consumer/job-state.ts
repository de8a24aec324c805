import { z } from "zod";
import { runSteps } from "../../db/step";
import { finishTasks } from "../../db/tasks";
import { taskId } from "../messages";
import type { Intake } from "./intake";

const jobStatusRow = z.object({ id: z.string(), status: z.string() });
const HELD = new Set(["paused", "cancelled", "failed"]);

/**
 * The job-state check, before anything is claimed or fetched: messages of a paused job are parked (acked,
 * their tasks left open: resume re-admits them with a new generation), and messages of a cancelled or
 * failed job close their task as `cancelled` (a co-author row written after the cancel, say), counted in
 * the same statements. One D1 read per batch; a write only when a stopped job's message arrives. A failed
 * read lets the batch through (the cancel already closed the job's open tasks, so their writes are refused).
 */
export async function holdStoppedJobs(db: D1Database, intake: Intake, now: number): Promise<void> {
  const jobIds = [...new Set([...intake.primaries.values()].map((d) => d.body.jobId))];
  let statuses: Map<string, string>;
  try {
    const { results } = await db
      .prepare("SELECT id, status FROM jobs WHERE id IN (SELECT value FROM json_each(?1))")
      .bind(JSON.stringify(jobIds))
      .all();
    statuses = new Map(results.map((r) => jobStatusRow.parse(r)).map((r) => [r.id, r.status]));
  } catch (error) {
    console.error(JSON.stringify({ msg: "job-state check failed", error: String(error) }));
    return;
  }
  const held = [...intake.primaries.values()].filter((d) => HELD.has(statuses.get(d.body.jobId) ?? ""));
  if (held.length === 0) return;
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
}
