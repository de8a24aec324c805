import { type NewRootTask, rootInsertStatements } from "./tasks/insert-roots";
import { type JobRow, OPEN_SQL } from "./types";

export interface NewJob {
  id: string;
  maxDepth: number;
  priority: string;
  format: string;
  filename: string | null;
  idempotencyKey: string | null;
  requestHash: string;
  rowsTotal: number;
  duplicatesSkipped: number;
  now: number;
}

export type { NewRootTask } from "./tasks/insert-roots";

/**
 * The job row and all its depth-0 tasks, authors and ISBN items, as one atomic batch (a refresh job, whose
 * few hundred items are known when it is created).
 */
export function createJobStatements(
  db: D1Database,
  job: NewJob,
  roots: readonly NewRootTask[],
  taskStatus: "pending" | "queued" = "pending",
): D1PreparedStatement[] {
  return [
    jobRowStatement(db, job, { rootTasks: roots.length, totalTasks: roots.length, rootsWritten: 1 }),
    ...rootInsertStatements(db, job.id, roots, { status: taskStatus, now: job.now, onlyWritable: false }),
  ];
}

/**
 * An upload's job row alone: `root_tasks` is the number of depth-0 items its parse found; `total_tasks`
 * grows and `roots_written` becomes 1 as the ingest stage writes those tasks (insertRootSlice), so the 202
 * does not wait for them.
 */
export function createUploadJobStatement(
  db: D1Database,
  job: NewJob,
  rootTasks: number,
): D1PreparedStatement {
  return jobRowStatement(db, job, { rootTasks, totalTasks: 0, rootsWritten: 0 });
}

function jobRowStatement(
  db: D1Database,
  job: NewJob,
  tasks: { rootTasks: number; totalTasks: number; rootsWritten: 0 | 1 },
): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO jobs (id, status, max_depth, priority, format, filename, idempotency_key, request_hash,
         rows_total, duplicates_skipped, root_tasks, total_tasks, roots_written, created_at, updated_at)
       VALUES (?1, 'queued', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?13, ?12, ?12)`,
    )
    .bind(
      job.id,
      job.maxDepth,
      job.priority,
      job.format,
      job.filename,
      job.idempotencyKey,
      job.requestHash,
      job.rowsTotal,
      job.duplicatesSkipped,
      tasks.rootTasks,
      tasks.totalTasks,
      job.now,
      tasks.rootsWritten,
    );
}

export async function getJob(db: D1Database, id: string): Promise<JobRow | null> {
  return db.prepare("SELECT * FROM jobs WHERE id = ?1").bind(id).first<JobRow>();
}

export async function findJobByIdempotencyKey(db: D1Database, key: string): Promise<JobRow | null> {
  return db.prepare("SELECT * FROM jobs WHERE idempotency_key = ?1").bind(key).first<JobRow>();
}

export async function listRecentJobs(db: D1Database, limit: number): Promise<JobRow[]> {
  const { results } = await db
    .prepare("SELECT * FROM jobs ORDER BY created_at DESC LIMIT ?1")
    .bind(limit)
    .all<JobRow>();
  return results;
}

export interface StateCount {
  depth: number;
  status: string;
  n: number;
  /** Tasks among `n` that cached at least one work (an ISBN item that found its edition). */
  warm?: number;
}

/**
 * The job row, its task counts by depth and state, and its ISBN items' counts by state (with how many
 * cached their edition), read in one round trip. The first count reads only the (job, status, depth) index;
 * the ISBN items are a key range (`isbn:…`) of the primary key, so authors' rows are not read for them.
 */
export async function getJobProgress(
  db: D1Database,
  id: string,
): Promise<{ job: JobRow; counts: StateCount[]; isbnCounts: StateCount[] } | null> {
  const [jobResult, countResult, isbnResult] = await db.batch([
    db.prepare("SELECT * FROM jobs WHERE id = ?1").bind(id),
    db
      .prepare("SELECT depth, status, COUNT(*) AS n FROM tasks WHERE job_id = ?1 GROUP BY status, depth")
      .bind(id),
    db
      .prepare(
        `SELECT 0 AS depth, status, COUNT(*) AS n, SUM(CASE WHEN works_count > 0 THEN 1 ELSE 0 END) AS warm
         FROM tasks WHERE job_id = ?1 AND author_key >= 'isbn:' AND author_key < 'isbn;' GROUP BY status`,
      )
      .bind(id),
  ]);
  const job = (jobResult?.results[0] as JobRow | undefined) ?? null;
  if (!job) return null;
  return {
    job,
    counts: (countResult?.results ?? []) as StateCount[],
    isbnCounts: (isbnResult?.results ?? []) as StateCount[],
  };
}

/** Marks jobs running: written with the first outcomes the consumer records. */
export function markJobsRunningStatement(
  db: D1Database,
  jobIds: readonly string[],
  now: number,
): D1PreparedStatement {
  return db
    .prepare(
      `UPDATE jobs SET status = 'running', started_at = COALESCE(started_at, ?2), updated_at = ?2
       WHERE status = 'queued' AND id IN (SELECT value FROM json_each(?1))`,
    )
    .bind(JSON.stringify(jobIds), now);
}

/**
 * Completes every listed job that has no open task left. Counters and the task table must agree,
 * so both are checked: a job never completes while a task is still pending, queued or running, nor before
 * its ingest has written all its depth-0 tasks (`roots_written`).
 */
export function completeJobsStatement(
  db: D1Database,
  jobIds: readonly string[],
  now: number,
): D1PreparedStatement {
  return db
    .prepare(
      `UPDATE jobs
       SET status = CASE WHEN failed_count + dead_count > 0 THEN 'completed_with_errors' ELSE 'completed' END,
           completed_at = ?2, updated_at = ?2
       WHERE id IN (SELECT value FROM json_each(?1))
         AND status IN ('queued', 'running')
         AND roots_written = 1
         AND done_count + skipped_count + failed_count + dead_count >= total_tasks
         AND NOT EXISTS (SELECT 1 FROM tasks WHERE tasks.job_id = jobs.id AND tasks.status IN ${OPEN_SQL})`,
    )
    .bind(JSON.stringify(jobIds), now);
}

/** Jobs that may be complete but were never finalised (e.g. the finishing batch raced); for the sweeper. */
export async function listUnfinishedJobIds(db: D1Database, limit: number): Promise<string[]> {
  const { results } = await db
    .prepare("SELECT id FROM jobs WHERE status IN ('queued', 'running') ORDER BY created_at LIMIT ?1")
    .bind(limit)
    .all<{ id: string }>();
  return results.map((r) => r.id);
}

/** Tasks currently dead across all jobs (what the dead-letter queue has delivered and not been redriven). */
export function deadLetterCountStatement(db: D1Database): D1PreparedStatement {
  return db.prepare("SELECT COALESCE(SUM(dead_count), 0) AS n FROM jobs");
}
