import { z } from "zod";
import { rowsOf, type Step } from "../step";
import { chunkJson } from "../types";
import { refRow } from "./refs";

const newChildRow = refRow.extend({ author_name: z.string(), depth: z.coerce.number() });
export type NewChildTask = z.infer<typeof newChildRow>;

export interface ChildTask {
  jobId: string;
  authorKey: string;
  authorName: string;
  depth: number;
  parentKey: string;
}

/**
 * New tasks for discovered co-authors. The job's total grows by the number of rows that do not exist
 * yet, then INSERT ... ON CONFLICT DO NOTHING adds exactly those; RETURNING names the new ones, the only
 * ones that get a message. Callers must pass each (job, author) at most once.
 *
 * The consumer writes them `queued`, as their message goes out right after (one D1 batch on the happy
 * path; an unsent one goes back to `pending` for the sweeper), and only under a parent that is done
 * (earlier in the same batch): an outcome whose own write was refused (an obsolete copy) adds none.
 * Reads back the tasks that were new: the only ones that get a message.
 */
export function insertChildTasks(
  db: D1Database,
  children: readonly ChildTask[],
  now: number,
  opts: { status: "pending" | "queued"; onlyUnderDoneParent: boolean } = {
    status: "pending",
    onlyUnderDoneParent: false,
  },
): Step<NewChildTask[]> {
  const totals: D1PreparedStatement[] = [];
  const inserts: D1PreparedStatement[] = [];
  const rows = children.map((c) => ({
    j: c.jobId,
    a: c.authorKey,
    n: c.authorName,
    d: c.depth,
    p: c.parentKey,
  }));
  const parentDone = (m: string) =>
    opts.onlyUnderDoneParent
      ? `EXISTS (SELECT 1 FROM tasks AS p WHERE p.job_id = ${m} ->> 'j' AND p.author_key = ${m} ->> 'p' AND p.status = 'done')`
      : "true";
  for (const chunk of chunkJson(rows)) {
    totals.push(
      db
        .prepare(
          `UPDATE jobs SET total_tasks = total_tasks + (
             SELECT COUNT(*) FROM json_each(?1) AS m
             WHERE m.value ->> 'j' = jobs.id AND ${parentDone("m.value")}
               AND NOT EXISTS (SELECT 1 FROM tasks AS t WHERE t.job_id = m.value ->> 'j' AND t.author_key = m.value ->> 'a')),
             updated_at = ?2
           WHERE id IN (SELECT value ->> 'j' FROM json_each(?1))`,
        )
        .bind(chunk, now),
    );
    inserts.push(
      db
        .prepare(
          `INSERT INTO tasks (job_id, author_key, author_name, depth, parent_key, status, created_at, updated_at)
           SELECT value ->> 'j', value ->> 'a', value ->> 'n', value ->> 'd', value ->> 'p', ?3, ?2, ?2
           FROM json_each(?1) WHERE ${parentDone("value")}
           ON CONFLICT (job_id, author_key) DO NOTHING
           RETURNING job_id, author_key, author_name, depth`,
        )
        .bind(chunk, now, opts.status),
    );
  }
  // Every total runs before the inserts (an insert makes its rows exist); chunks are disjoint.
  return {
    statements: [...totals, ...inserts],
    read: (results) => rowsOf(newChildRow, results.slice(totals.length)),
  };
}
