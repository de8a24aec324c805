import type { Step } from "../step";
import { rowsOf } from "../step";
import { chunkJson, OPEN_SQL, type TerminalTaskStatus } from "../types";
import { currentGeneration, type DeliveryGuard, refRow, type TaskRef } from "./refs";

export interface TerminalOutcome extends TaskRef, DeliveryGuard {
  status: TerminalTaskStatus;
  worksCount?: number;
  error?: string | null;
  sources?: string | null;
}

const COUNTER_COLUMN: Record<TerminalTaskStatus, string> = {
  done: "done_count",
  skipped: "skipped_count",
  failed: "failed_count",
  dead: "dead_count",
  cancelled: "cancelled_count",
};

/**
 * Terminal transitions for many tasks, with the job counters moved in the same statements' batch.
 * The counters' subqueries CROSS JOIN so SQLite walks the message list and looks each task up by its key:
 * left to itself it scans every open task of the job per message (22,000 rows read for 10 messages of a
 * 1,000-task job), which grows with the job.
 * The counter update runs first and counts only rows that are still open, then the task update
 * closes exactly those rows: a redelivered message finds its task closed and moves nothing.
 * Reads back the tasks it closed (an outcome whose task was closed or moved on is not among them).
 * Callers must pass each task at most once.
 */
export function finishTasks(
  db: D1Database,
  outcomes: readonly TerminalOutcome[],
  now: number,
): Step<TaskRef[]> {
  const counters: D1PreparedStatement[] = [];
  const closes: D1PreparedStatement[] = [];
  const byStatus = new Map<TerminalTaskStatus, TerminalOutcome[]>();
  for (const outcome of outcomes) {
    const list = byStatus.get(outcome.status) ?? [];
    list.push(outcome);
    byStatus.set(outcome.status, list);
  }
  for (const [status, list] of byStatus) {
    const rows = list.map((o) => ({
      j: o.jobId,
      a: o.authorKey,
      w: o.worksCount ?? 0,
      // Only works this task wrote count as cached: a skipped author's marker count is informative only.
      c: status === "done" ? (o.worksCount ?? 0) : 0,
      e: o.error ?? null,
      s: o.sources ?? null,
      g: o.gen ?? null,
      k: o.countAttempt ? 1 : 0,
    }));
    for (const chunk of chunkJson(rows)) {
      const column = COUNTER_COLUMN[status];
      counters.push(
        db
          .prepare(
            `UPDATE jobs SET
               ${column} = ${column} + (
                 SELECT COUNT(*) FROM json_each(?1) AS m CROSS JOIN tasks AS t
                   ON t.job_id = m.value ->> 'j' AND t.author_key = m.value ->> 'a'
                 WHERE t.job_id = jobs.id AND t.status IN ${OPEN_SQL}
                   AND ${currentGeneration("m.value ->> 'g'", "t")}),
               works_cached = works_cached + (
                 SELECT COALESCE(SUM(m.value ->> 'c'), 0) FROM json_each(?1) AS m CROSS JOIN tasks AS t
                   ON t.job_id = m.value ->> 'j' AND t.author_key = m.value ->> 'a'
                 WHERE t.job_id = jobs.id AND t.status IN ${OPEN_SQL}
                   AND ${currentGeneration("m.value ->> 'g'", "t")}),
               updated_at = ?2
             WHERE id IN (SELECT value ->> 'j' FROM json_each(?1))`,
          )
          .bind(chunk, now),
      );
      closes.push(
        db
          .prepare(
            `UPDATE tasks SET status = ?3, works_count = m.w, attempts = tasks.attempts + m.k,
               error = CASE WHEN ?3 IN ('done', 'skipped') THEN NULL
                            WHEN ?3 = 'dead' THEN 'retries exhausted after ' || (tasks.attempts + m.k)
                              || ' attempts; last error: ' || COALESCE(m.e, tasks.error, 'unknown')
                            ELSE COALESCE(m.e, tasks.error) END,
               sources = COALESCE(m.s, tasks.sources),
               finished_at = ?2, updated_at = ?2
             FROM (SELECT value ->> 'j' AS j, value ->> 'a' AS a, value ->> 'w' AS w, value ->> 'e' AS e,
                          value ->> 's' AS s, value ->> 'g' AS g, value ->> 'k' AS k FROM json_each(?1)) AS m
             WHERE tasks.job_id = m.j AND tasks.author_key = m.a AND tasks.status IN ${OPEN_SQL}
               AND ${currentGeneration("m.g", "tasks")}
             RETURNING job_id, author_key`,
          )
          .bind(chunk, now, status),
      );
    }
  }
  // Every counter update runs before the closes (a close makes its rows no longer open); chunks are disjoint.
  return {
    statements: [...counters, ...closes],
    read: (results) =>
      rowsOf(refRow, results.slice(counters.length)).map((r) => ({
        jobId: r.job_id,
        authorKey: r.author_key,
      })),
  };
}
