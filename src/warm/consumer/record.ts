import { TTL_SECONDS } from "../../cache/keys";
import { insertWarmEventStatement } from "../../db/events";
import { completeJobsStatement, markJobsRunningStatement } from "../../db/jobs";
import { type RowMeter, runSteps, writeOnly } from "../../db/step";
import {
  type AdmissionStateRow,
  type ChildTask,
  failureMark,
  finishTasks,
  insertChildTasks,
  type RetryNote,
  readAdmissionState,
  requeueTasks,
  type TerminalOutcome,
} from "../../db/tasks";
import type { TaskKind } from "../../db/types";
import { upsertJobCostsStatements, upsertUpstreamMinuteStatements } from "../../db/usage";
import { upsertWorksStatements } from "../../db/works";
import { isbnOfItemKey } from "../../ingest/isbn";
import { cachedItemWrites } from "../../refresh/written-items";
import { coAuthorsOf } from "../../sources/merge";
import type { Work } from "../../sources/types";
import { taskId, type WarmMessage } from "../messages";
import type { InvocationMetrics } from "../metrics";
import type { InvocationUsage } from "../usage";
import type { Claims } from "./claim";
import type { Outcome } from "./types";

/** What the batch's one D1 write changed. */
export interface Recorded {
  /** Tasks closed by this batch (an outcome whose write was refused is not among them). */
  closed: Set<string>;
  /** Tasks sent round again (their generation, maybe bumped, is now in `claims.generations`). */
  requeued: Set<string>;
  /** The running jobs' windows after this batch's changes (read in the same batch): admission's input. */
  admission: AdmissionStateRow[];
}

/**
 * One D1 batch records everything: the job running, works, task outcomes with their counters (each write
 * guarded by the message's generation), co-author tasks (`pending`), completion, the invocation's event row,
 * its upstream tries per provider and minute, and each job's billable operations; and reads the running
 * jobs' windows for the admission pass that follows.
 * Throws when D1 refuses the batch: it is one transaction, so nothing was recorded.
 */
export async function recordOutcomes(
  db: D1Database,
  outcomes: readonly Outcome[],
  claims: Claims,
  metrics: InvocationMetrics,
  times: { startedAt: number; now: number },
  usage: InvocationUsage,
  meter: RowMeter,
  admissionWindows: Record<TaskKind, number>,
): Promise<Recorded> {
  const { terminal, retries, children, works } = statesOf(outcomes, claims);
  const jobIds = [...new Set(outcomes.map((o) => o.body.jobId))];
  const [, , closed, requeued, , , admission] = await runSteps(
    db,
    [
      writeOnly([markJobsRunningStatement(db, jobIds, times.startedAt)]),
      writeOnly([
        ...upsertWorksStatements(db, works, times.now, TTL_SECONDS.bookByIsbn),
        // When each item's own entry was written and expires: what the scheduled refresh selects from.
        ...cachedItemWrites(db, outcomes, times.now),
      ]),
      finishTasks(db, terminal, times.now),
      requeueTasks(db, retries, times.now),
      insertChildTasks(db, children, times.now, { status: "pending", onlyUnderDoneParent: true }),
      writeOnly([
        completeJobsStatement(db, jobIds, times.now),
        insertWarmEventStatement(db, metrics, times.now),
        // The invocation's upstream tries per provider and each job's operations: counted in memory, written here.
        ...upsertUpstreamMinuteStatements(db, minuteOf(times.startedAt), usage.providerRows()),
        ...upsertJobCostsStatements(db, usage.jobs),
      ]),
      // Last, so it sees the slots this batch freed and the co-authors it added: no extra round trip.
      readAdmissionState(db, admissionWindows),
    ],
    meter,
  );
  for (const r of requeued)
    claims.generations.set(taskId({ jobId: r.job_id, authorKey: r.author_key }), r.generation);
  return {
    closed: new Set(closed.map(taskId)),
    requeued: new Set(requeued.map((r) => taskId({ jobId: r.job_id, authorKey: r.author_key }))),
    admission,
  };
}

const minuteOf = (ms: number) => Math.floor(ms / 60_000) * 60_000;

/** Each outcome as the state change of its task, and what a done author adds (works, co-authors). */
function statesOf(outcomes: readonly Outcome[], claims: Claims) {
  const terminal: TerminalOutcome[] = [];
  const retries: RetryNote[] = [];
  const children = new Map<string, ChildTask>();
  const works: { authorKey: string; work: Work }[] = [];
  const batchIds = new Set(outcomes.map((o) => taskId(o.body)));
  for (const outcome of outcomes) {
    const { body } = outcome;
    const task = {
      jobId: body.jobId,
      authorKey: body.authorKey,
      gen: body.gen,
      countAttempt: !claims.claimed.has(taskId(body)),
    };
    switch (outcome.kind) {
      case "done":
        terminal.push({
          ...task,
          status: "done",
          worksCount: outcome.works.length,
          error: null,
          sources: JSON.stringify(outcome.reports),
        });
        for (const work of outcome.works) works.push({ authorKey: body.authorKey, work });
        for (const child of coAuthorTasks(body, outcome.works)) {
          if (!children.has(taskId(child)) && !batchIds.has(taskId(child)))
            children.set(taskId(child), child);
        }
        break;
      case "skipped":
        terminal.push({ ...task, status: "skipped", worksCount: outcome.marker.worksCount, error: null });
        break;
      case "failed":
      case "dead":
        terminal.push({ ...task, status: outcome.kind, error: `${outcome.code}: ${outcome.message}` });
        break;
      case "retry":
        retries.push({
          ...task,
          error: `${outcome.code}: ${outcome.message}`,
          failedAttempt: failureMark(body.gen, outcome.attempt),
        });
        break;
      case "defer":
        retries.push({
          ...task,
          error: `deferred: ${outcome.reason}`,
          failedAttempt: 0,
          newGeneration: true,
        });
    }
  }
  return { terminal, retries, children: [...children.values()], works };
}

/** An author's co-authors one level down; an ISBN item's authors are the upload's own, so it adds none. */
function coAuthorTasks(body: WarmMessage, works: readonly Work[]): ChildTask[] {
  if (body.depth + 1 > body.maxDepth || isbnOfItemKey(body.authorKey) !== null) return [];
  return coAuthorsOf(body.authorName, works).map((co) => ({
    jobId: body.jobId,
    authorKey: co.key,
    authorName: co.name,
    depth: body.depth + 1,
    parentKey: body.authorKey,
  }));
}

/** Counts the invocation's outcomes into its metrics (written with the batch's event row). */
export function countOutcomes(metrics: InvocationMetrics, outcomes: readonly Outcome[]): void {
  for (const outcome of outcomes) {
    if (outcome.kind === "done") {
      metrics.done++;
      metrics.works += outcome.works.length;
    } else if (outcome.kind === "skipped") metrics.skipped++;
    else if (outcome.kind === "failed" || outcome.kind === "dead") metrics.failed++;
    else metrics.retried++;
  }
}
