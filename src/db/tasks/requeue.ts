import { rowsOf, type Step } from "../step";
import { OPEN_SQL } from "../types";
import {
  currentGeneration,
  type DeliveryGuard,
  type GenerationRow,
  generationRow,
  type TaskRef,
} from "./refs";

export interface RetryNote extends TaskRef, DeliveryGuard {
  error: string;
  /**
   * When the author itself failed: `failureMark(gen, attempt)` of the failed delivery (a duplicate copy of
   * the same attempt has the same mark and counts once); 0 for a deferral.
   */
  failedAttempt: number;
  /** A fresh message replaces the current one: bump the generation so older copies are dropped. */
  newGeneration?: boolean;
}

/**
 * A task whose message is being retried or deferred goes back to `queued`, keeping the last error for
 * the DLQ. `failures` counts the author's own failed attempts, each identified by (generation, delivery
 * attempt): at-least-once duplicates of one attempt do not use up the allowance twice.
 */
export function requeueTasks(
  db: D1Database,
  notes: readonly RetryNote[],
  now: number,
): Step<GenerationRow[]> {
  const rows = notes.map((n) => ({
    j: n.jobId,
    a: n.authorKey,
    e: n.error,
    f: n.failedAttempt,
    n: n.newGeneration ? 1 : 0,
    g: n.gen ?? null,
    k: n.countAttempt ? 1 : 0,
  }));
  const statement = db
    .prepare(
      `UPDATE tasks SET status = 'queued', error = m.e, failures = failures + (m.f > failure_mark),
         failure_mark = MAX(failure_mark, m.f), attempts = attempts + m.k,
         generation = generation + m.n, updated_at = ?2
       FROM (SELECT value ->> 'j' AS j, value ->> 'a' AS a, value ->> 'e' AS e, value ->> 'f' AS f,
                    value ->> 'n' AS n, value ->> 'g' AS g, value ->> 'k' AS k FROM json_each(?1)) AS m
       WHERE tasks.job_id = m.j AND tasks.author_key = m.a AND tasks.status IN ${OPEN_SQL}
         AND ${currentGeneration("m.g", "tasks")}
       RETURNING job_id, author_key, generation`,
    )
    .bind(JSON.stringify(rows), now);
  // The generation each task now has, read from the statement that set it: a racing dead-letter consumer
  // cannot make a fresh copy stale before it is even sent.
  return {
    statements: notes.length > 0 ? [statement] : [],
    read: (results) => rowsOf(generationRow, results),
  };
}
