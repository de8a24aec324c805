import type { Config } from "../config";
import { type BacklogRow, readBacklog } from "../db/backlog";
import { AppError } from "../errors";

type Priority = "low" | "normal" | "high";

/** The backlog as the upload check sees it: open work and the time it would take Open Library to drain. */
export interface BacklogEstimate {
  openTasks: number;
  openJobs: number;
  requestsPerTask: number;
  requestsPerSecond: number;
  /** Estimated upstream requests the open tasks still need, and the seconds to send them at the rate. */
  requests: number;
  drainSeconds: number;
}

/**
 * What the check decided before the body was read. `needs-priority`: over the normal limit but within the
 * `high` bypass, and the priority arrives in the body (multipart field, JSON): decided once it is parsed.
 */
export type BacklogVerdict =
  | { kind: "accept" }
  | { kind: "needs-priority"; estimate: BacklogEstimate }
  | { kind: "refuse"; error: AppError };

/** Drain time of the open work at the configured Open Library rate (requests per task measured: README). */
export function estimateBacklog(row: BacklogRow, config: Config): BacklogEstimate {
  const requestsPerTask = config.BACKLOG_REQUESTS_PER_TASK;
  const requestsPerSecond = config.OPENLIBRARY_RATE_PER_SECOND;
  const requests = row.openTasks * requestsPerTask;
  return {
    openTasks: row.openTasks,
    openJobs: row.openJobs,
    requestsPerTask,
    requestsPerSecond,
    requests: Math.round(requests),
    drainSeconds: requestsPerSecond > 0 ? Math.ceil(requests / requestsPerSecond) : 0,
  };
}

/** The limit an upload of this priority is held to: `high` may go past the normal limit by the bypass. */
export function backlogLimit(config: Config, priority: Priority): number {
  const limit = config.BACKLOG_LIMIT_SECONDS;
  return priority === "high" ? limit + config.BACKLOG_HIGH_BYPASS_SECONDS : limit;
}

/** Pure: accept, refuse, or wait for the priority (null: not known before the body). */
export function decideBacklog(
  estimate: BacklogEstimate,
  config: Config,
  priority: Priority | null,
): BacklogVerdict {
  // A limit of 0 turns the check off; a rate of 0 leaves nothing to estimate with.
  if (config.BACKLOG_LIMIT_SECONDS === 0 || estimate.requestsPerSecond <= 0) return { kind: "accept" };
  if (priority !== null) {
    return estimate.drainSeconds > backlogLimit(config, priority)
      ? { kind: "refuse", error: backlogFull(estimate, config, priority) }
      : { kind: "accept" };
  }
  if (estimate.drainSeconds <= backlogLimit(config, "normal")) return { kind: "accept" };
  if (estimate.drainSeconds > backlogLimit(config, "high"))
    return { kind: "refuse", error: backlogFull(estimate, config, "high") };
  return { kind: "needs-priority", estimate };
}

/** 429 with Retry-After: the seconds until the backlog has drained back to this priority's limit. */
export function backlogFull(estimate: BacklogEstimate, config: Config, priority: Priority): AppError {
  const limitSeconds = backlogLimit(config, priority);
  const retryAfterSeconds = Math.max(1, estimate.drainSeconds - limitSeconds);
  return new AppError({
    code: "backlog_full",
    message: `the backlog would take about ${estimate.drainSeconds} s to drain (limit for ${priority}: ${limitSeconds} s); retry in ${retryAfterSeconds} s`,
    httpStatus: 429,
    kind: "transient",
    retryAfterSeconds,
    details: {
      backlogSeconds: estimate.drainSeconds,
      limitSeconds,
      priority,
      openTasks: estimate.openTasks,
      openJobs: estimate.openJobs,
      estimatedRequests: estimate.requests,
      requestsPerTask: estimate.requestsPerTask,
      requestsPerSecond: estimate.requestsPerSecond,
      retryAfterSeconds,
    },
  });
}

/**
 * The upload's check, before its body is read or anything stored: one D1 query. A replay of an existing
 * Idempotency-Key is never refused (it stores nothing and answers the job it already has).
 */
export async function checkBacklog(
  db: D1Database,
  config: Config,
  idempotencyKey: string | null,
  priority: Priority | null,
): Promise<BacklogVerdict> {
  if (config.BACKLOG_LIMIT_SECONDS === 0) return { kind: "accept" };
  const row = await readBacklog(db, idempotencyKey);
  if (row.existingJobId !== null) return { kind: "accept" };
  return decideBacklog(estimateBacklog(row, config), config, priority);
}
