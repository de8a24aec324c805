import { chunkJson, OPEN_SQL, type TaskRow, type TerminalTaskStatus } from "./types";

export interface TaskRef {
  jobId: string;
  authorKey: string;
}

export interface ClaimedTask {
  job_id: string;
  author_key: string;
  status: string;
  attempts: number;
  job_status: string | null;
}

/**
 * Moves the tasks of a message batch to `running` (counting the attempt) and returns those that were
 * still open and whose message is of the task's current generation. A task missing from the result is
 * already terminal (the message is a redelivery) or was handed to a newer message (this copy is obsolete).
 */
export function claimTasksStatement(
  db: D1Database,
  refs: readonly (TaskRef & { gen: number })[],
  now: number,
): D1PreparedStatement {
  return db
    .prepare(
      `UPDATE tasks SET status = 'running', attempts = attempts + 1, updated_at = ?2
       FROM (SELECT value ->> 'j' AS j, value ->> 'a' AS a, value ->> 'g' AS g FROM json_each(?1)) AS m
       WHERE tasks.job_id = m.j AND tasks.author_key = m.a AND tasks.status IN ${OPEN_SQL}
         AND tasks.generation = m.g
       RETURNING job_id, author_key, status, attempts, failures, failure_mark, generation`,
    )
    .bind(JSON.stringify(refs.map((r) => ({ j: r.jobId, a: r.authorKey, g: r.gen }))), now);
}

/** How a consumer outcome is guarded and counted; both absent for the sweeper's and DLQ's own verdicts. */
export interface DeliveryGuard {
  /** The message's generation: the row moves only if it is still the task's current one. */
  gen?: number;
  /** The delivery was not claimed (a first delivery), so this write counts its attempt. */
  countAttempt?: boolean;
}

export interface TerminalOutcome extends TaskRef, DeliveryGuard {
  status: TerminalTaskStatus;
  worksCount?: number;
  error?: string | null;
  sources?: string | null;
}

/** SQL over a json_each row `m` (alias given) and a task row: no generation given, or the task's current one. */
const currentGeneration = (generation: string, task: string) =>
  `(${generation} IS NULL OR ${task}.generation = ${generation})`;

const COUNTER_COLUMN: Record<TerminalTaskStatus, string> = {
  done: "done_count",
  skipped: "skipped_count",
  failed: "failed_count",
  dead: "dead_count",
};

/**
 * Terminal transitions for many tasks, with the job counters moved in the same statements' batch.
 * The counter update runs first and counts only rows that are still open, then the task update
 * closes exactly those rows: a redelivered message finds its task closed and moves nothing.
 * Statements come in pairs (counter, task); each task update returns the rows it closed.
 * Callers must pass each task at most once.
 */
export function finishTasksStatements(
  db: D1Database,
  outcomes: readonly TerminalOutcome[],
  now: number,
): D1PreparedStatement[] {
  const statements: D1PreparedStatement[] = [];
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
      statements.push(
        db
          .prepare(
            `UPDATE jobs SET
               ${column} = ${column} + (
                 SELECT COUNT(*) FROM json_each(?1) AS m JOIN tasks AS t
                   ON t.job_id = m.value ->> 'j' AND t.author_key = m.value ->> 'a'
                 WHERE t.job_id = jobs.id AND t.status IN ${OPEN_SQL}
                   AND ${currentGeneration("m.value ->> 'g'", "t")}),
               works_cached = works_cached + (
                 SELECT COALESCE(SUM(m.value ->> 'c'), 0) FROM json_each(?1) AS m JOIN tasks AS t
                   ON t.job_id = m.value ->> 'j' AND t.author_key = m.value ->> 'a'
                 WHERE t.job_id = jobs.id AND t.status IN ${OPEN_SQL}
                   AND ${currentGeneration("m.value ->> 'g'", "t")}),
               updated_at = ?2
             WHERE id IN (SELECT value ->> 'j' FROM json_each(?1))`,
          )
          .bind(chunk, now),
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
  return statements;
}

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
export function requeueTasksStatement(
  db: D1Database,
  notes: readonly RetryNote[],
  now: number,
): D1PreparedStatement {
  const rows = notes.map((n) => ({
    j: n.jobId,
    a: n.authorKey,
    e: n.error,
    f: n.failedAttempt,
    n: n.newGeneration ? 1 : 0,
    g: n.gen ?? null,
    k: n.countAttempt ? 1 : 0,
  }));
  return db
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
}

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
}

/** The tasks behind a batch of dead letters, with how often each author itself failed. */
export function deadLetterTasksStatement(db: D1Database, refs: readonly TaskRef[]): D1PreparedStatement {
  return db
    .prepare(
      `SELECT t.job_id, t.author_key, t.status, t.failures, t.attempts, t.generation, t.author_name, t.depth, j.max_depth
       FROM tasks AS t JOIN jobs AS j ON j.id = t.job_id
       JOIN (SELECT value ->> 'j' AS j, value ->> 'a' AS a FROM json_each(?1)) AS m
         ON t.job_id = m.j AND t.author_key = m.a`,
    )
    .bind(JSON.stringify(refs.map((r) => ({ j: r.jobId, a: r.authorKey }))));
}

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
 */
export function insertChildTasksStatements(
  db: D1Database,
  children: readonly ChildTask[],
  now: number,
  opts: { status: "pending" | "queued"; onlyUnderDoneParent: boolean } = {
    status: "pending",
    onlyUnderDoneParent: false,
  },
): D1PreparedStatement[] {
  const statements: D1PreparedStatement[] = [];
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
    statements.push(
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
  return statements;
}

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
export function markPendingStatements(
  db: D1Database,
  refs: readonly TaskRef[],
  now: number,
): D1PreparedStatement[] {
  return moveWaitingStatements(db, refs, "queued", "pending", now);
}

/** Marks tasks `queued` once their message is on the queue. */
export function markQueuedStatements(
  db: D1Database,
  refs: readonly TaskRef[],
  now: number,
): D1PreparedStatement[] {
  return moveWaitingStatements(db, refs, "pending", "queued", now);
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
    .all<{ job_id: string; author_key: string }>();
  return results.map((r) => ({ jobId: r.job_id, authorKey: r.author_key }));
}

export interface StaleTask {
  job_id: string;
  author_key: string;
  author_name: string;
  depth: number;
  max_depth: number;
  generation: number;
}

/**
 * Tasks still `pending` after `pendingSeconds`: their message never reached the queue (or the send
 * succeeded but marking them queued did not). Re-sending is safe: a duplicate finds its task closed.
 */
export async function listStalePendingTasks(
  db: D1Database,
  now: number,
  pendingSeconds: number,
  limit: number,
): Promise<StaleTask[]> {
  const { results } = await db
    .prepare(
      `SELECT t.job_id, t.author_key, t.author_name, t.depth, j.max_depth, t.generation
       FROM tasks AS t JOIN jobs AS j ON j.id = t.job_id
       WHERE t.status = 'pending' AND t.updated_at < ?1
       LIMIT ?2`,
    )
    .bind(now - pendingSeconds * 1000, limit)
    .all<StaleTask>();
  return results;
}

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

export interface RedriveCandidate {
  author_key: string;
  author_name: string;
  depth: number;
  generation: number;
}

/**
 * Re-opens a job's failed and dead tasks: counters move back in the same batch, attempts restart at 0,
 * the old outcome is appended to the task's history, and the job is running again.
 * Returns the statements; the caller reads the candidates first and sends their messages after.
 */
export function redriveStatements(db: D1Database, jobId: string, now: number): D1PreparedStatement[] {
  return [
    db
      .prepare(
        `UPDATE jobs SET
           failed_count = failed_count - (SELECT COUNT(*) FROM tasks WHERE job_id = ?1 AND status = 'failed'),
           dead_count = dead_count - (SELECT COUNT(*) FROM tasks WHERE job_id = ?1 AND status = 'dead'),
           status = 'running', completed_at = NULL, updated_at = ?2
         WHERE id = ?1 AND EXISTS (SELECT 1 FROM tasks WHERE job_id = ?1 AND status IN ('failed', 'dead'))`,
      )
      .bind(jobId, now),
    db
      .prepare(
        `UPDATE tasks SET
           history = json_insert(COALESCE(history, '[]'), '$[#]',
             json_object('status', status, 'error', error, 'attempts', attempts, 'failures', failures, 'at', updated_at)),
           status = 'pending', attempts = 0, failures = 0, error = NULL, finished_at = NULL, updated_at = ?2
         WHERE job_id = ?1 AND status IN ('failed', 'dead')
         RETURNING author_key, author_name, depth, generation`,
      )
      .bind(jobId, now),
  ];
}

/**
 * Open tasks of jobs where nothing has moved for `stallSeconds`: their messages were lost (a local
 * queue restart, a platform incident). Their `updated_at` is touched so the next sweep waits again.
 */
export async function takeStalledTasks(
  db: D1Database,
  now: number,
  stallSeconds: number,
  limit: number,
): Promise<StaleTask[]> {
  const cutoff = now - stallSeconds * 1000;
  const { results } = await db
    .prepare(
      `UPDATE tasks SET updated_at = ?2
       FROM (SELECT t.job_id AS j, t.author_key AS a FROM tasks AS t JOIN jobs ON jobs.id = t.job_id
             WHERE jobs.status IN ('queued', 'running') AND t.status IN ('queued', 'running')
               AND NOT EXISTS (SELECT 1 FROM tasks AS recent WHERE recent.job_id = t.job_id AND recent.updated_at >= ?1)
             LIMIT ?3) AS m
       WHERE tasks.job_id = m.j AND tasks.author_key = m.a
       RETURNING job_id, author_key, author_name, depth, generation,
         (SELECT max_depth FROM jobs WHERE jobs.id = tasks.job_id) AS max_depth`,
    )
    .bind(cutoff, now, limit)
    .all<StaleTask>();
  return results;
}

/** Hands open tasks to fresh messages: their generation goes up, so copies of the old message are dropped. */
export function bumpGenerationStatement(
  db: D1Database,
  refs: readonly TaskRef[],
  now: number,
): D1PreparedStatement {
  return db
    .prepare(
      `UPDATE tasks SET generation = generation + 1, updated_at = ?2
       FROM (SELECT value ->> 'j' AS j, value ->> 'a' AS a FROM json_each(?1)) AS m
       WHERE tasks.job_id = m.j AND tasks.author_key = m.a AND tasks.status IN ${OPEN_SQL}
       RETURNING job_id, author_key, generation`,
    )
    .bind(JSON.stringify(refs.map((r) => ({ j: r.jobId, a: r.authorKey }))), now);
}

/** Identifies one delivery attempt of one message generation (attempts stay far below 1,000). */
export function failureMark(generation: number, attempt: number): number {
  return generation * 1000 + Math.min(attempt, 999);
}
