export type JobStatus =
  | "queued"
  | "running"
  | "paused"
  | "completed"
  | "completed_with_errors"
  | "cancelled"
  | "failed";
export type JobKind = "upload" | "refresh";
export type TaskStatus =
  | "pending"
  | "queued"
  | "running"
  | "done"
  | "skipped"
  | "failed"
  | "dead"
  | "cancelled";
export const TASK_KINDS = ["author", "isbn"] as const;
export type TaskKind = (typeof TASK_KINDS)[number];

export const OPEN_TASK_STATUSES = ["pending", "queued", "running"] as const satisfies readonly TaskStatus[];
export const TERMINAL_TASK_STATUSES = [
  "done",
  "skipped",
  "failed",
  "dead",
  "cancelled",
] as const satisfies readonly TaskStatus[];
export type TerminalTaskStatus = (typeof TERMINAL_TASK_STATUSES)[number];

/** SQL list literal of the states a task may still leave, used in every guarded transition. */
export const OPEN_SQL = "('pending', 'queued', 'running')";

export interface JobRow {
  id: string;
  kind: JobKind;
  status: JobStatus;
  max_depth: number;
  priority: string;
  format: string;
  filename: string | null;
  idempotency_key: string | null;
  request_hash: string;
  rows_total: number;
  duplicates_skipped: number;
  root_tasks: number;
  total_tasks: number;
  /** 0 while the ingest stage is still writing the depth-0 tasks (migration 0012). */
  roots_written: number;
  done_count: number;
  skipped_count: number;
  failed_count: number;
  dead_count: number;
  cancelled_count: number;
  works_cached: number;
  created_at: number;
  started_at: number | null;
  completed_at: number | null;
  updated_at: number;
  read_link_version: number;
  /** sha256 of the uploaded file alone (migration 0006); null for jobs from before it. */
  input_sha256?: string | null;
}

export interface TaskRow {
  job_id: string;
  author_key: string;
  kind: TaskKind;
  author_name: string;
  depth: number;
  parent_key: string | null;
  status: TaskStatus;
  attempts: number;
  failures: number;
  generation: number;
  failure_mark: number;
  error: string | null;
  works_count: number | null;
  sources: string | null;
  history: string | null;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
}

/** D1 caps a single bound value at 2 MB; JSON parameters are chunked well below that. */
export const JSON_PARAM_MAX_CHARS = 900_000;

/** Splits items into JSON-array parameters that each stay under the bound-value size limit. */
export function chunkJson<T>(items: readonly T[], maxChars = JSON_PARAM_MAX_CHARS): string[] {
  const chunks: string[] = [];
  let current: string[] = [];
  let size = 2;
  for (const item of items) {
    const encoded = JSON.stringify(item);
    if (current.length > 0 && size + encoded.length + 1 > maxChars) {
      chunks.push(`[${current.join(",")}]`);
      current = [];
      size = 2;
    }
    current.push(encoded);
    size += encoded.length + 1;
  }
  if (current.length > 0) chunks.push(`[${current.join(",")}]`);
  return chunks;
}
