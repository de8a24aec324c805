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
const WRITABLE_STATUSES: readonly string[] = ["queued", "running", "paused"];
const WRITABLE = `(${WRITABLE_STATUSES.map((s) => `'${s}'`).join(", ")})`;

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

const jobState = z.object({ status: z.string() });

/**
 * One slice of an upload's depth-0 tasks (`pending`: they enter the queue through admission), written by
 * its ingest stage after the 202: the job's total rises by the rows of the slice that do not exist yet and
 * exactly those are inserted, in one transaction; the last slice also marks the job's tasks all written
 * (`roots_written`, checked against the rows). Idempotent: a retried slice writes nothing twice. A stopped
 * job (cancelled while ingest ran) gets no more rows, so its counters still equal its task rows. Reads back
 * whether the job still takes tasks.
 */
export function insertRootSlice(
  db: D1Database,
  jobId: string,
  slice: readonly NewRootTask[],
  opts: { now: number; last: boolean },
): Step<{ writable: boolean }> {
  const chunks = chunkJson(slice.map((a) => ({ k: a.key })));
  const totals = chunks.map((chunk) =>
    db
      .prepare(
        `UPDATE jobs SET total_tasks = total_tasks + (
           SELECT COUNT(*) FROM json_each(?2) AS m
           WHERE NOT EXISTS (SELECT 1 FROM tasks AS t WHERE t.job_id = ?1 AND t.author_key = m.value ->> 'k')),
           updated_at = ?3
         WHERE id = ?1 AND status IN ${WRITABLE}`,
      )
      .bind(jobId, chunk, opts.now),
  );
  const written = db
    .prepare(
      `UPDATE jobs SET roots_written = 1, updated_at = ?2
       WHERE id = ?1 AND status IN ${WRITABLE}
         AND (SELECT COUNT(*) FROM tasks WHERE job_id = ?1 AND depth = 0) >= root_tasks`,
    )
    .bind(jobId, opts.now);
  return {
    statements: [
      db.prepare("SELECT status FROM jobs WHERE id = ?1").bind(jobId),
      // Every total runs before the inserts (an insert makes its rows exist); chunks are disjoint.
      ...totals,
      ...rootInsertStatements(db, jobId, slice, { status: "pending", now: opts.now, onlyWritable: true }),
      ...(opts.last ? [written] : []),
    ],
    read: (results) => {
      const status = rowsOf(jobState, results.slice(0, 1))[0]?.status;
      return { writable: status !== undefined && WRITABLE_STATUSES.includes(status) };
    },
  };
}
