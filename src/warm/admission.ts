import type { Config } from "../config";
import { runSteps } from "../db/step";
import { type AdmissionStateRow, claimAdmissions, markPending, readAdmissionState } from "../db/tasks";
import { TASK_KINDS, type TaskKind } from "../db/types";
import { type AdmissionLimits, allocateAdmissions } from "./admission-plan";
import { sendWarmMessages, warmMessageFor, warmQueues } from "./messages";
import { failPoisonTasks } from "./poison";

export interface AdmissionReport {
  /** Tasks claimed (pending → queued) and sent, per job. */
  admitted: Record<string, number>;
  sent: number;
  /** Claimed but not sent: back to `pending` for the next pass. */
  unsent: number;
  poisoned: number;
}

const EMPTY: AdmissionReport = { admitted: {}, sent: 0, unsent: 0, poisoned: 0 };

const WINDOW_BOUNDS = { min: 20, max: 100 } as const;

/** Items of each kind one upstream request carries: what a window's worth of requests holds. */
const perRequest = (config: Config): Record<TaskKind, number> => ({
  author: config.OPENLIBRARY_AUTHORS_PER_REQUEST,
  isbn: config.OPENLIBRARY_ISBNS_PER_REQUEST,
});

/**
 * A kind's per-job window and global cap. Authors and ISBNs go to queues of their own, so each kind has its
 * own window: slow ISBN batches (Google one ISBN at a time) never hold the author queue's share. An explicit
 * ADMISSION_WINDOW wins (for each kind); otherwise the window holds about ADMISSION_LOOKAHEAD_SECONDS of
 * Open Library's rate in grouped requests (authors, 10 a request: 20 at 1/s, 60 at 3/s, 100 unpaced or from
 * 5/s; ISBNs, 25 a request: 50 at 1/s, else 100): enough to keep the consumer busy, and a short queue for
 * the next job's first items to wait in.
 */
export function admissionLimits(config: Config, kind: TaskKind): AdmissionLimits {
  const rate = config.OPENLIBRARY_RATE_PER_SECOND;
  const derived =
    rate > 0
      ? Math.ceil(rate * perRequest(config)[kind] * config.ADMISSION_LOOKAHEAD_SECONDS)
      : WINDOW_BOUNDS.max;
  const window = config.ADMISSION_WINDOW ?? Math.min(WINDOW_BOUNDS.max, Math.max(WINDOW_BOUNDS.min, derived));
  return { window, globalCap: config.ADMISSION_GLOBAL_CAP };
}

/** Every kind's limits: what one admission pass reads and claims against. */
export function admissionLimitsByKind(config: Config): Record<TaskKind, AdmissionLimits> {
  return { author: admissionLimits(config, "author"), isbn: admissionLimits(config, "isbn") };
}

/** The windows alone, for the state read the consumer makes in its record batch. */
export function admissionWindows(config: Config): Record<TaskKind, number> {
  return { author: admissionLimits(config, "author").window, isbn: admissionLimits(config, "isbn").window };
}

/**
 * One admission pass: the running jobs' windows are read (unless the caller read them in a batch it already
 * made), the free slots are shared out by priority-weighted round robin (admission-plan.ts), the tasks are
 * claimed in one D1 batch (atomic: the SQL re-checks every window and the global cap), and their messages
 * go out in ≤100-message sendBatch calls. A claimed task whose send failed goes back to `pending` (the next
 * pass admits it); one whose row cannot become a message ends `failed` (poison.ts). Throws only when D1
 * refuses the read or the claim (nothing was claimed then); callers decide whether that matters.
 */
export async function admitPending(
  env: Env,
  config: Config,
  now: number,
  state?: readonly AdmissionStateRow[],
): Promise<AdmissionReport> {
  const limits = admissionLimitsByKind(config);
  const rows = state ?? (await runSteps(env.DB, [readAdmissionState(env.DB, admissionWindows(config))]))[0];
  const grants = TASK_KINDS.flatMap((kind) =>
    allocateAdmissions(
      rows
        .filter((r) => r.kind === kind)
        .map((r) => ({
          jobId: r.id,
          priority: r.priority,
          inFlight: r.in_flight,
          pending: r.pending,
          createdAt: r.created_at,
        })),
      limits[kind],
    ).map((grant) => ({ ...grant, kind })),
  );
  if (grants.length === 0) return EMPTY;
  const [claimed] = await runSteps(env.DB, [claimAdmissions(env.DB, grants, limits, now)]);
  if (claimed.length === 0) return EMPTY;
  const result = await sendWarmMessages(warmQueues(env), claimed.map(warmMessageFor));
  const poisoned = await failPoisonTasks(env.DB, result.invalid, now);
  if (result.unsent.length > 0) {
    try {
      await runSteps(env.DB, [markPending(env.DB, result.unsent, now)]);
    } catch (error) {
      // Left queued without a message: the job's stall re-admission (or the sweep's) sends them again.
      console.error(JSON.stringify({ msg: "unsent admissions left queued", error: String(error) }));
    }
  }
  const admitted: Record<string, number> = {};
  for (const m of result.sent) admitted[m.jobId] = (admitted[m.jobId] ?? 0) + 1;
  console.log(
    JSON.stringify({
      msg: "admitted",
      admitted,
      unsent: result.unsent.length,
      poisoned,
      calls: result.calls,
    }),
  );
  return { admitted, sent: result.sent.length, unsent: result.unsent.length, poisoned };
}

/** `admitPending` for callers that must not fail because of it (the consumer, the watch loop). */
export async function admitQuietly(
  env: Env,
  config: Config,
  now: number,
  state?: readonly AdmissionStateRow[],
): Promise<AdmissionReport> {
  try {
    return await admitPending(env, config, now, state);
  } catch (error) {
    console.error(JSON.stringify({ msg: "admission pass failed", error: String(error) }));
    return EMPTY;
  }
}
