import { type Step, writeOnly } from "../step";
import { chunkJson } from "../types";
import type { TaskRef } from "./refs";

/**
 * Moves tasks between the two "waiting for a message" states, only from `from` (a consumer may be ahead).
 * The unary `+` keeps SQLite off the partial index on pending tasks: driven from that index the update
 * rescans the whole JSON list for every pending task (quadratic; a 3,000-author upload took 7.5 s);
 * driven from the JSON list it is one primary-key lookup per task.
 */
function moveWaitingStatements(
  db: D1Database,
  refs: readonly TaskRef[],
  from: "pending" | "queued",
  to: "pending" | "queued",
  now: number,
): D1PreparedStatement[] {
  return chunkJson(refs.map((r) => ({ j: r.jobId, a: r.authorKey }))).map((chunk) =>
    db
      .prepare(
        `UPDATE tasks SET status = ?3, updated_at = ?2
         FROM (SELECT value ->> 'j' AS j, value ->> 'a' AS a FROM json_each(?1)) AS m
         WHERE tasks.job_id = m.j AND tasks.author_key = m.a AND +tasks.status = ?4`,
      )
      .bind(chunk, now, to, from),
  );
}

/** Tasks whose fresh message could not be sent go back to `pending`: the sweeper sends them again. */
export function markPending(db: D1Database, refs: readonly TaskRef[], now: number): Step<void> {
  return writeOnly(moveWaitingStatements(db, refs, "queued", "pending", now));
}

/** Marks tasks `queued` once their message is on the queue. */
export function markQueued(db: D1Database, refs: readonly TaskRef[], now: number): Step<void> {
  return writeOnly(moveWaitingStatements(db, refs, "pending", "queued", now));
}
