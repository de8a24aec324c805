import { createCache } from "../../cache/kv";
import { Budget } from "../../lib/budget";
import { admissionWindows } from "../admission";
import { taskId } from "../messages";
import { emptyMetrics, type InvocationMetrics, writeAnalyticsPoint } from "../metrics";
import { carryOver, InvocationUsage, takeCarried } from "../usage";
import { applyFailureAllowance } from "./allowance";
import { warmAndCache } from "./cache-admission";
import { claimSuspects, withFailures } from "./claim";
import { admitAfterBatch, resendDeferred, writeMarkers } from "./fan-out";
import { Intake } from "./intake";
import { holdStoppedJobs } from "./job-state";
import { countOutcomes, type Recorded, recordOutcomes } from "./record";
import type { WarmDeps } from "./types";

export type { Outcome, WarmDeps } from "./types";

import type { Outcome } from "./types";

/**
 * The warm queue's consumer, as its phases: take in → claim → warm and cache → failure allowance →
 * record (one D1 batch, which also reads the running jobs' windows) → admit (one more D1 batch when slots
 * are free and tasks wait) → markers → re-send deferred → settle each message. Never throws: every message
 * is acked or retried on its own. On the happy path (first deliveries that succeed) a batch costs one D1
 * batch, one claim batch and one sendBatch when it admits, KV writes and one Analytics Engine point.
 */
export async function handleWarmBatch(batch: MessageBatch<unknown>, env: Env, deps: WarmDeps): Promise<void> {
  const startedAt = deps.now();
  const { config } = deps;
  const metrics = emptyMetrics(batch);
  const usage = countDeliveries(batch);
  const subrequests = new Budget("subrequest", config.SUBREQUEST_BUDGET);
  const kvOperations = new Budget("kv", config.KV_OPERATION_BUDGET);
  const cache = deps.cache ?? createCache(env.CACHE, { budget: kvOperations });
  const finish = () => {
    metrics.durationMs = deps.now() - startedAt;
    writeAnalyticsPoint(env, metrics, usage.upstream);
  };

  const intake = new Intake(batch, metrics);
  const priorities = intake.primaries.size > 0 ? await holdStoppedJobs(env.DB, intake, startedAt) : undefined;
  if (intake.primaries.size === 0) return finish();
  let claims: Awaited<ReturnType<typeof claimSuspects>>;
  try {
    claims = await claimSuspects(env, intake, startedAt);
  } catch (error) {
    intake.retryAll(config, deps.random, `claim failed: ${String(error)}`, metrics);
    return finish();
  }
  const warmed = await warmAndCache(withFailures(intake.deliveries, claims), {
    db: env.DB,
    cache,
    subrequests,
    kvOperations,
    deps: { ...deps, usage, priorities },
  });
  metrics.subrequests = subrequests.used;
  const outcomes = await applyFailureAllowance(env.DB, warmed, claims, config);
  countOutcomes(metrics, outcomes);
  metrics.durationMs = deps.now() - startedAt;
  const now = deps.now();
  countSettlements(usage, outcomes);
  const kvBefore = { reads: cache.stats.reads, writes: cache.stats.writes };
  usage.share("kvReads", kvBefore.reads);
  usage.share("kvWrites", kvBefore.writes);
  takeCarried(usage);
  const meter = { rowsRead: 0, rowsWritten: 0 };
  let recorded: Recorded;
  try {
    recorded = await recordOutcomes(
      env.DB,
      outcomes,
      claims,
      metrics,
      { startedAt, now },
      usage,
      meter,
      admissionWindows(config),
    );
  } catch (error) {
    // Nothing was recorded (a D1 batch is one transaction): every claimed message goes round again, and the
    // operations counted so far wait for this isolate's next batch.
    for (const [jobId, counters] of usage.jobs) carryOver(jobId, counters);
    resetCounts(metrics);
    intake.retryAll(config, deps.random, `recording outcomes failed: ${String(error)}`, metrics);
    return finish();
  }
  // Independent of each other (admission: D1 and the queue; markers: KV; deferrals: their own tasks), so
  // admitting the next tasks adds no latency to the batch beyond the slowest of the three.
  await Promise.all([
    admitAfterBatch(env, config, recorded, deps.now),
    writeMarkers(cache, outcomes, recorded, now),
    resendDeferred(env, outcomes, claims, deps.now),
  ]);
  // Each message on its own: a retry whose write was refused (task closed or moved on) is acked.
  for (const outcome of outcomes) {
    const id = taskId(outcome.body);
    if (outcome.kind === "retry" && recorded.requeued.has(id))
      intake.settle(id, (m) => m.retry({ delaySeconds: outcome.delaySeconds }));
    else intake.settle(id, (m) => m.ack());
  }
  carryAfterBatch(usage, meter, {
    reads: cache.stats.reads - kvBefore.reads,
    writes: cache.stats.writes - kvBefore.writes,
  });
  finish();
}

/** Queue operations as the batch shows them: every delivery a read, a first delivery its message's send. */
function countDeliveries(batch: MessageBatch<unknown>): InvocationUsage {
  const usage = new InvocationUsage();
  for (const message of batch.messages) {
    const jobId = (message.body as { jobId?: unknown } | null)?.jobId;
    if (typeof jobId !== "string") continue;
    const c = usage.job(jobId);
    c.queueDelivered++;
    if (message.attempts <= 1) c.queueSent++;
  }
  return usage;
}

/** Each delivery ends acked or retried: a retry outcome is retried, everything else (riders too) acked. */
function countSettlements(usage: InvocationUsage, outcomes: readonly Outcome[]): void {
  for (const o of outcomes) if (o.kind === "retry") usage.job(o.body.jobId).queueRetried++;
  for (const c of usage.jobs.values()) c.queueAcked = c.queueDelivered - c.queueRetried;
}

/** The batch's own D1 rows and the KV operations after it (markers) go with this isolate's next batch. */
function carryAfterBatch(
  usage: InvocationUsage,
  meter: { rowsRead: number; rowsWritten: number },
  kv: { reads: number; writes: number },
): void {
  const after = new InvocationUsage();
  for (const [jobId, c] of usage.jobs) after.job(jobId).queueDelivered = c.queueDelivered;
  after.share("d1RowsRead", meter.rowsRead);
  after.share("d1RowsWritten", meter.rowsWritten);
  after.share("kvReads", kv.reads);
  after.share("kvWrites", kv.writes);
  for (const [jobId, c] of after.jobs)
    carryOver(jobId, {
      d1RowsRead: c.d1RowsRead,
      d1RowsWritten: c.d1RowsWritten,
      kvReads: c.kvReads,
      kvWrites: c.kvWrites,
    });
}

function resetCounts(metrics: InvocationMetrics): void {
  metrics.done = metrics.skipped = metrics.failed = metrics.retried = metrics.works = 0;
}
