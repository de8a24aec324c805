import { runSteps } from "../db/step";
import { finishTasks } from "../db/tasks";
import { type SendResult, taskId } from "./messages";

/**
 * Tasks whose row cannot become a valid message (a name past the limits, written before they existed, or
 * a corrupted row) end `failed` with the reason, so they neither block their job nor break the caller.
 * Returns how many were failed; a D1 error is logged, not thrown (the next sweep finds them again).
 */
export async function failPoisonTasks(
  db: D1Database,
  invalid: SendResult["invalid"],
  now: number,
): Promise<number> {
  if (invalid.length === 0) return 0;
  const seen = new Set<string>();
  const outcomes = invalid.flatMap(({ message, reason }) => {
    const id = taskId(message);
    if (seen.has(id)) return [];
    seen.add(id);
    return [{ jobId: message.jobId, authorKey: message.authorKey, status: "failed" as const, error: reason }];
  });
  try {
    await runSteps(db, [finishTasks(db, outcomes, now)]);
    console.error(
      JSON.stringify({ msg: "poison tasks failed", count: outcomes.length, first: invalid[0]?.reason }),
    );
    return outcomes.length;
  } catch (error) {
    console.error(JSON.stringify({ msg: "failing poison tasks failed", error: String(error) }));
    return 0;
  }
}
