import type { StateCount } from "../db/jobs";
import { type JobRow, type TaskStatus, TERMINAL_TASK_STATUSES } from "../db/types";
import type { JobProgress, StateCounts } from "./job-responses";

const STATES: TaskStatus[] = [
  "pending",
  "queued",
  "running",
  "done",
  "skipped",
  "failed",
  "dead",
  "cancelled",
];

function emptyCounts(): StateCounts {
  return {
    total: 0,
    pending: 0,
    queued: 0,
    running: 0,
    done: 0,
    skipped: 0,
    failed: 0,
    dead: 0,
    cancelled: 0,
  };
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** What every view of a job starts with. */
function identity(job: JobRow) {
  const { id: jobId, status, format, filename, max_depth: maxDepth, priority } = job;
  return { jobId, status, format, filename, maxDepth, priority };
}

export function summarizeJob(job: JobRow) {
  const finished =
    job.done_count + job.skipped_count + job.failed_count + job.dead_count + job.cancelled_count;
  return {
    ...identity(job),
    /** `upload`, or `refresh` for the scheduled refresh's jobs (README, "Scheduled refresh"). */
    kind: job.kind,
    // Before ingest has written an upload's tasks, the items its parse found.
    tasks: Math.max(job.total_tasks, job.root_tasks),
    finished,
    failed: job.failed_count + job.dead_count,
    worksCached: job.works_cached,
    createdAt: iso(job.created_at),
    completedAt: iso(job.completed_at),
    links: { progress: `/api/jobs/${job.id}` },
  };
}

/**
 * A job's progress, computed from the task table (the truth), with the job row's counters for
 * works and timestamps. Percent counts terminal tasks; ETA extrapolates the rate seen so far.
 */
export function describeProgress(
  job: JobRow,
  rows: readonly StateCount[],
  now: number,
  isbnRows: readonly StateCount[] = [],
): JobProgress {
  const counts = emptyCounts();
  const byDepth = new Map<number, StateCounts>();
  const byKind = { author: emptyCounts(), isbn: { ...emptyCounts(), warm: 0 } };
  for (const row of rows) {
    const status = row.status as TaskStatus;
    if (!STATES.includes(status)) continue;
    const n = Number(row.n);
    counts[status] += n;
    counts.total += n;
    const depth = byDepth.get(row.depth) ?? emptyCounts();
    depth[status] += n;
    depth.total += n;
    byDepth.set(row.depth, depth);
  }
  // ISBN items are read apart (their key range); the authors are every other task.
  for (const row of isbnRows) {
    const status = row.status as TaskStatus;
    if (!STATES.includes(status)) continue;
    byKind.isbn[status] += Number(row.n);
    byKind.isbn.total += Number(row.n);
    if (status === "done" || status === "skipped") byKind.isbn.warm += Number(row.warm ?? 0);
  }
  for (const status of [...STATES, "total"] as const)
    byKind.author[status] = counts[status] - byKind.isbn[status];
  const terminal = TERMINAL_TASK_STATUSES.reduce((sum, s) => sum + counts[s], 0);
  const open = counts.total - terminal;
  const percent = counts.total === 0 ? 0 : Math.floor((terminal / counts.total) * 1000) / 10;
  let etaSeconds: number | null = null;
  if (open === 0) etaSeconds = 0;
  else if (job.started_at !== null && terminal > 0) {
    const elapsed = Math.max(1, now - job.started_at) / 1000;
    etaSeconds = Math.ceil((open / terminal) * elapsed);
  }
  return {
    ...identity(job),
    rows: job.rows_total,
    duplicatesSkipped: job.duplicates_skipped,
    counts,
    byKind,
    byDepth: [...byDepth.entries()].sort(([a], [b]) => a - b).map(([depth, c]) => ({ depth, ...c })),
    worksCached: job.works_cached,
    deadLetters: counts.dead,
    percent,
    etaSeconds,
    createdAt: iso(job.created_at),
    startedAt: iso(job.started_at),
    completedAt: iso(job.completed_at),
    updatedAt: iso(job.updated_at),
    links: { self: `/api/jobs/${job.id}`, failures: `/api/jobs/${job.id}/failures` },
  };
}
