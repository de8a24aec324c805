import { z } from "zod";
import { rowsOf, type Step } from "../step";
import { OPEN_SQL } from "../types";
import { generationRow, type TaskRef } from "./refs";

export const claimedRow = generationRow.extend({
  status: z.string(),
  attempts: z.coerce.number(),
  failures: z.coerce.number(),
  failure_mark: z.coerce.number(),
});
export type ClaimedTask = z.infer<typeof claimedRow>;

/**
 * Moves the tasks of a message batch to `running` (counting the attempt) and returns those that were
 * still open and whose message is of the task's current generation. A task missing from the result is
 * already terminal (the message is a redelivery) or was handed to a newer message (this copy is obsolete).
 */
export function claimTasks(
  db: D1Database,
  refs: readonly (TaskRef & { gen: number })[],
  now: number,
): Step<ClaimedTask[]> {
  const statement = db
    .prepare(
      `UPDATE tasks SET status = 'running', attempts = attempts + 1, updated_at = ?2
       FROM (SELECT value ->> 'j' AS j, value ->> 'a' AS a, value ->> 'g' AS g FROM json_each(?1)) AS m
       WHERE tasks.job_id = m.j AND tasks.author_key = m.a AND tasks.status IN ${OPEN_SQL}
         AND tasks.generation = m.g
       RETURNING job_id, author_key, status, attempts, failures, failure_mark, generation`,
    )
    .bind(JSON.stringify(refs.map((r) => ({ j: r.jobId, a: r.authorKey, g: r.gen }))), now);
  return { statements: [statement], read: (results) => rowsOf(claimedRow, results) };
}
