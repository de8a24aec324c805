/**
 * The JSON bodies of the job endpoints, as types: src builds them (job-created.ts, progress.ts) and the
 * Node scripts read them (warm, demo, bench, chaos). This file imports only src/db/types.ts, which imports
 * nothing, both with the `.ts` suffix: the scripts' tsconfig (nodenext, no workers types) checks them too.
 */
import type { JobStatus, TaskStatus } from "../db/types.ts";

/** How many of a job's tasks are in each state, and in all. */
export type StateCounts = Record<TaskStatus, number> & { total: number };

/** The 202 of POST /api/jobs for a created (or replayed) job: its plan and rough estimates. */
export interface JobCreated {
  jobId: string;
  status: JobStatus;
  format: string;
  rows: number;
  maxDepth: number;
  priority: string;
  authorsQueued: number;
  authorsPending: number;
  /** ISBN work items (the reader's own books, deduped by ISBN-13): sent right after the 202, and left pending. */
  isbnsQueued: number;
  isbnsPending: number;
  /** Rows whose ISBN cells hold no usable ISBN (Excel's `9.78053E+12`, ASINs, bad check digits): not warmed. */
  isbnsUnusable: { count: number; examples: { row: number; value: string; reason: string }[] };
  duplicatesSkipped: number;
  /** Rows with a value past a limit (e.g. an author name over 300 characters): not warmed. */
  rowsRejected: number;
  rejections: { row: number; reason: string }[];
  estimatedWorks: number;
  estimatedDuration: { seconds: number; text: string };
  links: { progress: string; failures: string };
}

/** GET /api/jobs/:id: a job's progress (describeProgress). */
export interface JobProgress {
  jobId: string;
  status: JobStatus;
  format: string;
  filename: string | null;
  maxDepth: number;
  priority: string;
  rows: number;
  duplicatesSkipped: number;
  counts: StateCounts;
  /** Authors and ISBN items apart; `isbn.warm`: the reader's books now cached by ISBN ("N of M warm"). */
  byKind: { author: StateCounts; isbn: StateCounts & { warm: number } };
  byDepth: (StateCounts & { depth: number })[];
  worksCached: number;
  deadLetters: number;
  /** Share of tasks in a terminal state, 0–100 with one decimal. */
  percent: number;
  /** Extrapolated from the rate so far; 0 when nothing is open, null before anything finished. */
  etaSeconds: number | null;
  createdAt: string | null;
  startedAt: string | null;
  completedAt: string | null;
  updatedAt: string | null;
  links: { self: string; failures: string };
  /** Each provider's daily quota (GET /api/jobs/:id adds it; null when the Durable Objects cannot be read). */
  quotas?: Record<"openlibrary" | "googlebooks", ProviderQuota> | null;
}

export interface ProviderQuota {
  used: number;
  /** null: unlimited. */
  limit: number | null;
  exhausted: boolean;
  /** When the provider's quota day ends (ISO 8601); Google's at midnight Pacific time. */
  resetAt: string;
}

/** A job's lifecycle as GET /api/jobs/:id (and every control route) shows it (#12). */
export interface JobStageView {
  stage: "ingest" | "warm" | "verify" | "publish";
  status: "PENDING" | "RUNNING" | "SUCCESS" | "FAILED" | "SKIPPED" | "CANCELLED";
  startedAt: string | null;
  endedAt: string | null;
  message: string | null;
  counts: Record<string, number> | null;
  artifact: { key: string; sha256: string; bytes: number } | null;
}

export interface JobView extends JobProgress {
  /** The first stage that is not SUCCESS (the last one when all are); null for a job without stages. */
  stage: { name: JobStageView["stage"]; status: JobStageView["status"] } | null;
  stages: JobStageView[];
  /** The job's billable operations and their price (src/jobs/cost.ts builds it, its schema checks it). */
  cost?: JobCostView;
}

/** GET /api/jobs/:id `cost` (README, "Cost per job"). */
export interface JobCostView {
  consumerInvocations: number;
  queueOperations: number;
  queue: { sent: number; delivered: number; retried: number; acked: number };
  kvReads: number;
  kvWrites: number;
  d1RowsRead: number;
  d1RowsWritten: number;
  upstreamRequests: Record<string, number>;
  estimateUsd: {
    queues: number;
    kvReads: number;
    kvWrites: number;
    d1RowsRead: number;
    d1RowsWritten: number;
    total: number;
  };
}
