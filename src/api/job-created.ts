import type { Config } from "../config";
import type { ParsedExport } from "../ingest/csv";
import type { CreatedJob } from "../jobs/create";
import { enabledSources } from "../sources";
import { rateFor } from "../sources/rate-limit";
import type { JobCreated } from "./job-responses";

export type { JobCreated };

/** Rough planning figures, documented in the README; the job's progress replaces them with facts. */
const ESTIMATED_WORKS_PER_AUTHOR = 12;
const ESTIMATED_FANOUT_PER_LEVEL = 0.2;
const UNLIMITED_AUTHORS_PER_SECOND = 20;

function describeSeconds(seconds: number): string {
  if (seconds < 90) return `about ${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 5400) return `about ${Math.round(seconds / 60)} min`;
  return `about ${(seconds / 3600).toFixed(1)} h`;
}

function estimate(config: Config, authors: number, maxDepth: number) {
  const expectedAuthors = authors * (1 + ESTIMATED_FANOUT_PER_LEVEL) ** maxDepth;
  const rates = enabledSources(config).map((s) => rateFor(config, s));
  // Each author needs about one request per source, so the slowest rate-limited source sets the pace.
  const limited = rates.filter((r) => r > 0);
  const authorsPerSecond = limited.length > 0 ? Math.min(...limited) : UNLIMITED_AUTHORS_PER_SECOND;
  const seconds = Math.ceil(expectedAuthors / authorsPerSecond);
  return {
    estimatedWorks: Math.round(expectedAuthors * ESTIMATED_WORKS_PER_AUTHOR),
    estimatedDuration: { seconds, text: describeSeconds(seconds) },
  };
}

/** The 202 for a created (or replayed) job: its plan and rough estimates. */
export function describeCreatedJob(
  config: Config,
  { job, queued, pending, isbnsQueued, isbnsPending }: CreatedJob,
  parsed: Pick<ParsedExport, "rowsRejected" | "rejections" | "isbnsUnusable">,
): JobCreated {
  const rootAuthors = queued + pending;
  const refused = { rowsRejected: parsed.rowsRejected, rejections: parsed.rejections };
  return {
    jobId: job.id,
    status: job.status,
    format: job.format,
    rows: job.rows_total,
    maxDepth: job.max_depth,
    priority: job.priority,
    authorsQueued: queued,
    authorsPending: pending,
    isbnsQueued,
    isbnsPending,
    isbnsUnusable: parsed.isbnsUnusable,
    duplicatesSkipped: job.duplicates_skipped,
    ...refused,
    ...estimate(config, rootAuthors, job.max_depth),
    links: { progress: `/api/jobs/${job.id}`, failures: `/api/jobs/${job.id}/failures` },
  };
}
