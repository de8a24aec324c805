import { z } from "zod";
import type { TaskRow } from "../types";
import { generationRow, refRow, type TaskRef } from "./refs";

export interface FailureTally {
  job_id: string;
  author_key: string;
  failures: number;
  failure_mark: number;
}

/** How often each task's author has failed so far (read when a delivery that was not claimed fails). */
export function failureTallyStatement(db: D1Database, refs: readonly TaskRef[]): D1PreparedStatement {
  return db
    .prepare(
      `SELECT t.job_id, t.author_key, t.failures, t.failure_mark
       FROM (SELECT value ->> 'j' AS j, value ->> 'a' AS a FROM json_each(?1)) AS m
       JOIN tasks AS t ON t.job_id = m.j AND t.author_key = m.a`,
    )
    .bind(JSON.stringify(refs.map((r) => ({ j: r.jobId, a: r.authorKey }))));
}

export interface DeadLetterCheck {
  job_id: string;
  author_key: string;
  status: string;
  failures: number;
  attempts: number;
  generation: number;
  author_name: string;
  depth: number;
  max_depth: number;
  priority: string | null;
}

/** The tasks behind a batch of dead letters, with how often each author itself failed. */
export function deadLetterTasksStatement(db: D1Database, refs: readonly TaskRef[]): D1PreparedStatement {
  return db
    .prepare(
      `SELECT t.job_id, t.author_key, t.status, t.failures, t.attempts, t.generation, t.author_name, t.depth, j.max_depth, j.priority
       FROM tasks AS t JOIN jobs AS j ON j.id = t.job_id
       JOIN (SELECT value ->> 'j' AS j, value ->> 'a' AS a FROM json_each(?1)) AS m
         ON t.job_id = m.j AND t.author_key = m.a`,
    )
    .bind(JSON.stringify(refs.map((r) => ({ j: r.jobId, a: r.authorKey }))));
}

/** Tasks whose messages went to the dead-letter queue but were never marked dead (DLQ consumer lost). */
export async function listExhaustedTasks(
  db: D1Database,
  maxFailures: number,
  maxAttempts: number,
  olderThan: number,
  limit: number,
): Promise<TaskRef[]> {
  const { results } = await db
    .prepare(
      `SELECT job_id, author_key FROM tasks
       WHERE status IN ('queued', 'running') AND (failures >= ?1 OR attempts >= ?2) AND updated_at < ?3 LIMIT ?4`,
    )
    .bind(maxFailures, maxAttempts, olderThan, limit)
    .all();
  return results.map((row) => {
    const ref = refRow.parse(row);
    return { jobId: ref.job_id, authorKey: ref.author_key };
  });
}

/**
 * The columns of an UPDATE … RETURNING on `tasks` that a warm message is built from (`staleTaskRow`): the
 * task's own, and its job's depth limit and priority (the priority picks the message's queue).
 */
export const MESSAGE_COLUMNS = `job_id, author_key, author_name, depth, generation,
         (SELECT max_depth FROM jobs WHERE jobs.id = tasks.job_id) AS max_depth,
         (SELECT priority FROM jobs WHERE jobs.id = tasks.job_id) AS priority`;

/** A task with what its message needs (the warm message is built from this). */
export const staleTaskRow = generationRow.extend({
  author_name: z.string(),
  depth: z.coerce.number(),
  max_depth: z.coerce.number(),
  /** The job's priority where the statement read it: what picks the message's queue (`queueOf`). */
  priority: z.string().nullish(),
});
export type StaleTask = z.infer<typeof staleTaskRow>;

export async function listFailures(
  db: D1Database,
  jobId: string,
  limit: number,
  afterKey: string | null,
): Promise<TaskRow[]> {
  const { results } = await db
    .prepare(
      `SELECT * FROM tasks WHERE job_id = ?1 AND status IN ('failed', 'dead') AND author_key > ?2
       ORDER BY author_key LIMIT ?3`,
    )
    .bind(jobId, afterKey ?? "", limit)
    .all<TaskRow>();
  return results;
}

export async function getTask(db: D1Database, ref: TaskRef): Promise<TaskRow | null> {
  return db
    .prepare("SELECT * FROM tasks WHERE job_id = ?1 AND author_key = ?2")
    .bind(ref.jobId, ref.authorKey)
    .first<TaskRow>();
}
