import { z } from "zod";
import { rowsOf, type Step } from "../step";
import { chunkJson, type TaskKind } from "../types";

export interface NewRootTask {
  key: string;
  name: string;
  /** Absent: an author. */
  kind?: TaskKind;
}

/** Job states whose depth-0 tasks may still be written: a cancelled or failed job gets none. */
const WRITABLE = "('queued', 'running', 'paused')";

/**
 * The INSERTs of a job's depth-0 tasks (authors and ISBN items), chunked into JSON parameters. `onlyWritable`
 * makes each one a no-op once the job is stopped (the check runs inside the statement, so an operator's
 * cancel in another batch is seen either before or after, never half-way).
 */
export function rootInsertStatements(
  db: D1Database,
  jobId: string,
  roots: readonly NewRootTask[],
  opts: { status: "pending" | "queued"; now: number; onlyWritable: boolean },
): D1PreparedStatement[] {
  const rows = roots.map((a) =>
    a.kind && a.kind !== "author" ? { k: a.key, n: a.name, t: a.kind } : { k: a.key, n: a.name },
  );
  // A WHERE is needed anyway: without it SQLite would read ON CONFLICT as a join constraint.
  const guard = opts.onlyWritable
    ? `WHERE (SELECT status FROM jobs WHERE id = ?1) IN ${WRITABLE}`
    : "WHERE true";
  return chunkJson(rows).map((chunk) =>
    db
      .prepare(
        `INSERT INTO tasks (job_id, author_key, kind, author_name, depth, status, created_at, updated_at)
         SELECT ?1, value ->> 'k', COALESCE(value ->> 't', 'author'), value ->> 'n', 0, ?4, ?2, ?2
         FROM json_each(?3) ${guard}
         ON CONFLICT (job_id, author_key) DO NOTHING`,
      )
      .bind(jobId, opts.now, chunk, opts.status),
  );
}

const writtenRow = z.object({ total_tasks: z.coerce.number() });

/**
 * ingest's write of an upload's depth-0 tasks (`pending`: they enter the queue through admission), after the
 * 202: the job's total rises by their number and the rows are inserted, in one transaction. Idempotent: the
 * total rises only while it is 0 (no task written yet) and each row is inserted once, so a retried step
 * writes nothing twice. A stopped job (cancelled before its ingest ran) gets no rows and keeps total 0, so
 * its counters still equal its task rows. Reads back whether this call wrote them.
 */
export function insertRootTasks(
  db: D1Database,
  jobId: string,
  roots: readonly NewRootTask[],
  now: number,
): Step<{ written: boolean }> {
  return {
    statements: [
      db
        .prepare(
          `UPDATE jobs SET total_tasks = ?2, updated_at = ?3
           WHERE id = ?1 AND total_tasks = 0 AND status IN ${WRITABLE}
           RETURNING total_tasks`,
        )
        .bind(jobId, roots.length, now),
      ...rootInsertStatements(db, jobId, roots, { status: "pending", now, onlyWritable: true }),
    ],
    read: (results) => ({ written: rowsOf(writtenRow, results.slice(0, 1)).length > 0 }),
  };
}
