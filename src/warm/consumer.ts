import { cacheKeys, TTL_SECONDS } from "../cache/keys";
import { type Cache, createCache } from "../cache/kv";
import type { Config } from "../config";
import { insertWarmEventStatement } from "../db/events";
import { completeJobsStatement, markJobsRunningStatement } from "../db/jobs";
import {
  type ChildTask,
  claimTasksStatement,
  type FailureTally,
  failureMark,
  failureTallyStatement,
  finishTasksStatements,
  insertChildTasksStatements,
  markPendingStatements,
  type RetryNote,
  requeueTasksStatement,
  type TerminalOutcome,
} from "../db/tasks";
import { upsertWorksStatements } from "../db/works";
import { classifyFailure } from "../errors";
import { Budget, createLimiter, mapWithConcurrency } from "../lib/budget";
import {
  fetchAuthorWorks,
  type ProviderBreakers,
  type RateLimiter,
  type SourceReport,
  worstCaseSubrequests,
} from "../sources";
import { coAuthorsOf } from "../sources/merge";
import type { Work } from "../sources/types";
import { retryDelaySeconds } from "./backoff";
import { isFreshEnough, markerFor, type ProcessedMarker } from "./marker";
import { sendWarmMessages, taskId, type WarmMessage, warmMessageSchema, warmQueue } from "./messages";
import { emptyMetrics, type InvocationMetrics, writeAnalyticsPoint } from "./metrics";
import { failPoisonTasks } from "./poison";

export interface WarmDeps {
  config: Config;
  fetch: typeof fetch;
  now: () => number;
  random: () => number;
  breakers: ProviderBreakers;
  rateLimiter?: RateLimiter | undefined;
  cache?: Cache;
}

type Outcome =
  | { kind: "done"; body: WarmMessage; works: Work[]; reports: SourceReport[]; requests: number }
  | { kind: "skipped"; body: WarmMessage; marker: ProcessedMarker }
  | { kind: "failed"; body: WarmMessage; code: string; message: string }
  | { kind: "dead"; body: WarmMessage; code: string; message: string }
  | { kind: "retry"; body: WarmMessage; code: string; message: string; delaySeconds: number; attempt: number }
  | { kind: "defer"; body: WarmMessage; delaySeconds: number; reason: string };

/** Messages deferred for lack of budget come back almost at once, as fresh messages. */
const DEFER_DELAY_SECONDS = 1;

/**
 * The warm queue's consumer. Never throws: every message is acked or retried on its own.
 * I/O per batch on the happy path (first deliveries that succeed): one D1 batch recording every
 * outcome, KV writes in parallel, one sendBatch for new co-authors, one Analytics Engine point.
 * Redelivered and re-sent messages cost one more D1 batch first (the claim), a failed delivery that was
 * not claimed one read of its failure tally, and a send that fails one write moving tasks to pending.
 */
export async function handleWarmBatch(batch: MessageBatch<unknown>, env: Env, deps: WarmDeps): Promise<void> {
  const startedAt = deps.now();
  const config = deps.config;
  const subrequests = new Budget("subrequest", config.SUBREQUEST_BUDGET);
  const kvOperations = new Budget("kv", config.KV_OPERATION_BUDGET);
  const cache = deps.cache ?? createCache(env.CACHE, { budget: kvOperations });
  const metrics = emptyMetrics(batch);

  // 1. Validate; one message per task (a duplicate in the same batch rides on its twin).
  const primaries = new Map<string, { message: Message<unknown>; body: WarmMessage }>();
  const riders = new Map<string, Message<unknown>[]>();
  for (const message of batch.messages) {
    const parsed = warmMessageSchema.safeParse(message.body);
    if (!parsed.success) {
      console.error(
        JSON.stringify({ msg: "invalid warm message dropped", id: message.id, issues: parsed.error.issues }),
      );
      metrics.failed++;
      message.ack();
      continue;
    }
    const id = taskId(parsed.data);
    const current = primaries.get(id);
    if (!current) primaries.set(id, { message, body: parsed.data });
    else if (parsed.data.gen > current.body.gen) {
      // Only the newest generation can claim the task: an older copy must not speak for it.
      riders.set(id, [...(riders.get(id) ?? []), current.message]);
      primaries.set(id, { message, body: parsed.data });
    } else riders.set(id, [...(riders.get(id) ?? []), message]);
  }
  const settle = (id: string, action: (m: Message<unknown>) => void) => {
    const primary = primaries.get(id);
    if (primary) action(primary.message);
    for (const rider of riders.get(id) ?? []) rider.ack();
  };
  const retryAll = (reason: string) => {
    for (const [id, { message }] of primaries) {
      const delaySeconds = backoff(config, message.attempts, undefined, deps.random);
      console.error(JSON.stringify({ msg: "batch retried", reason, id: message.id, delaySeconds }));
      settle(id, (m) => m.retry({ delaySeconds }));
      metrics.retried++;
    }
  };
  if (primaries.size === 0) {
    finish(env, metrics, startedAt, deps);
    return;
  }

  // 2. Claim what may be a second copy: a redelivery (attempts > 1) or a re-sent message (gen > 0) moves
  // its task to running, and one whose task is closed or has moved on to a newer message is acked unworked
  // before it costs an upstream request. A first delivery goes straight to work: its outcome is written
  // under a generation guard (an obsolete copy's write changes nothing), so the happy path costs one D1
  // batch, and a rare duplicate first delivery costs the providers a second fetch, never a double count.
  const entries = [...primaries.values()];
  const jobIds = [...new Set(entries.map((e) => e.body.jobId))];
  const claimed = new Set<string>();
  // How often each author already failed (from the claim, or read when a first delivery fails).
  const tallies = new Map<string, { failures: number; mark: number }>();
  const noteTallies = (rows: readonly FailureTally[]) => {
    for (const r of rows) {
      tallies.set(taskId({ jobId: r.job_id, authorKey: r.author_key }), {
        failures: Number(r.failures),
        mark: Number(r.failure_mark),
      });
    }
  };
  const generations = new Map<string, number>();
  const suspects = entries.filter((e) => e.message.attempts > 1 || e.body.gen > 0);
  if (suspects.length > 0) {
    try {
      const [claimResult] = await env.DB.batch([
        claimTasksStatement(
          env.DB,
          suspects.map((e) => e.body),
          startedAt,
        ),
      ]);
      const rows = (claimResult?.results ?? []) as (FailureTally & { generation: number })[];
      noteTallies(rows);
      for (const r of rows) {
        const id = taskId({ jobId: r.job_id, authorKey: r.author_key });
        claimed.add(id);
        generations.set(id, Number(r.generation));
      }
    } catch (error) {
      retryAll(`claim failed: ${String(error)}`);
      finish(env, metrics, startedAt, deps);
      return;
    }
    for (const { body } of suspects) {
      const id = taskId(body);
      if (!claimed.has(id)) {
        settle(id, (m) => m.ack());
        primaries.delete(id);
      }
    }
  }
  const work = [...primaries.values()];

  // 3–4. Warm each claimed author (processed marker first, then the sources) and cache its works.
  // Each author's works go to KV as soon as it is fetched, while other authors still wait on the
  // providers, within what is left of the invocation's KV allowance (the rest are deferred, not failed).
  const kvAdmission = new KvAdmission(kvOperations, work.length);
  const written = new Set<string>();
  const kvWriteSlot = createLimiter(config.KV_WRITE_CONCURRENCY);
  const outcomes = await mapWithConcurrency(
    work,
    config.CONSUMER_CONCURRENCY,
    async ({ message, body }): Promise<Outcome> => {
      const outcome = await warmOne(body, message.attempts, cache, subrequests, deps);
      kvAdmission.markerRead();
      if (outcome.kind !== "done") return outcome;
      const units = kvWritesFor(outcome);
      if (!kvAdmission.admit(units)) {
        return { kind: "defer", body, delaySeconds: DEFER_DELAY_SECONDS, reason: "KV budget reached" };
      }
      const { puts, failed } = await writeAuthorToCache(cache, outcome, written, kvWriteSlot, () =>
        kvAdmission.settle(1),
      );
      kvAdmission.settle(units - 1 - puts); // one unit stays promised for the processed marker
      if (failed === 0) return outcome;
      // Works that are not in KV are not cached: the author is not done and gets no marker.
      kvAdmission.settle(1);
      return cacheWriteFailed(body, message.attempts, failed, cache, deps);
    },
  );
  metrics.subrequests = subrequests.used;

  // The author's own failure allowance (one try + max_retries) belongs to the task, not the message:
  // deferrals and crashes do not use it up, duplicates of one attempt count once, and the consumer
  // decides "dead" itself when the author fails its 4th attempt.
  const untallied = outcomes.filter((o) => o.kind === "retry" && !claimed.has(taskId(o.body)));
  if (untallied.length > 0) {
    try {
      const { results } = await failureTallyStatement(
        env.DB,
        untallied.map((o) => o.body),
      ).all<FailureTally>();
      noteTallies(results);
    } catch (error) {
      // Without the tally the author's allowance is unknown: the retry counts it again next time.
      console.warn(JSON.stringify({ msg: "failure tally unavailable", error: String(error) }));
    }
  }
  for (const [i, outcome] of outcomes.entries()) {
    if (outcome.kind !== "retry") continue;
    const prior = tallies.get(taskId(outcome.body)) ?? { failures: 0, mark: 0 };
    const counts = failureMark(outcome.body.gen, outcome.attempt) > prior.mark ? 1 : 0;
    if (prior.failures + counts >= config.MAX_DELIVERIES) {
      outcomes[i] = { kind: "dead", body: outcome.body, code: outcome.code, message: outcome.message };
    }
  }

  const done = outcomes.filter((o): o is Extract<Outcome, { kind: "done" }> => o.kind === "done");

  // 5. One D1 batch records everything: works, task outcomes with their counters, children, completion.
  const now = deps.now();
  const terminal: TerminalOutcome[] = [];
  const retryNotes: RetryNote[] = [];
  const children = new Map<string, ChildTask>();
  const workEntries: { authorKey: string; work: Work }[] = [];
  const guardOf = (body: WarmMessage) => ({ gen: body.gen, countAttempt: !claimed.has(taskId(body)) });
  for (const outcome of outcomes) {
    const { body } = outcome;
    if (outcome.kind === "done") {
      terminal.push({
        ...guardOf(body),
        jobId: body.jobId,
        authorKey: body.authorKey,
        status: "done",
        worksCount: outcome.works.length,
        error: null,
        sources: JSON.stringify(outcome.reports),
      });
      for (const w of outcome.works) workEntries.push({ authorKey: body.authorKey, work: w });
      if (body.depth + 1 <= body.maxDepth) {
        for (const co of coAuthorsOf(body.authorName, outcome.works)) {
          const child = {
            jobId: body.jobId,
            authorKey: co.key,
            authorName: co.name,
            depth: body.depth + 1,
            parentKey: body.authorKey,
          };
          if (!children.has(taskId(child)) && !primaries.has(taskId(child)))
            children.set(taskId(child), child);
        }
      }
    } else if (outcome.kind === "skipped") {
      terminal.push({
        ...guardOf(body),
        jobId: body.jobId,
        authorKey: body.authorKey,
        status: "skipped",
        worksCount: outcome.marker.worksCount,
        error: null,
      });
    } else if (outcome.kind === "failed") {
      terminal.push({
        ...guardOf(body),
        jobId: body.jobId,
        authorKey: body.authorKey,
        status: "failed",
        error: `${outcome.code}: ${outcome.message}`,
      });
    } else if (outcome.kind === "dead") {
      terminal.push({
        ...guardOf(body),
        jobId: body.jobId,
        authorKey: body.authorKey,
        status: "dead",
        error: `${outcome.code}: ${outcome.message}`,
      });
    } else if (outcome.kind === "retry") {
      retryNotes.push({
        ...guardOf(body),
        jobId: body.jobId,
        authorKey: body.authorKey,
        error: `${outcome.code}: ${outcome.message}`,
        failedAttempt: failureMark(body.gen, outcome.attempt),
      });
    } else {
      retryNotes.push({
        ...guardOf(body),
        jobId: body.jobId,
        authorKey: body.authorKey,
        error: `deferred: ${outcome.reason}`,
        failedAttempt: 0,
        newGeneration: true,
      });
    }
  }
  for (const outcome of outcomes) {
    if (outcome.kind === "done") {
      metrics.done++;
      metrics.works += outcome.works.length;
    } else if (outcome.kind === "skipped") metrics.skipped++;
    else if (outcome.kind === "failed" || outcome.kind === "dead") metrics.failed++;
    else metrics.retried++;
  }
  metrics.durationMs = deps.now() - startedAt;
  const childList = [...children.values()];
  const statements: D1PreparedStatement[] = [
    markJobsRunningStatement(env.DB, jobIds, startedAt),
    ...upsertWorksStatements(env.DB, workEntries, now, TTL_SECONDS.bookByIsbn),
  ];
  const finishStart = statements.length;
  statements.push(...finishTasksStatements(env.DB, terminal, now));
  const finishEnd = statements.length;
  const requeueAt =
    retryNotes.length > 0 ? statements.push(requeueTasksStatement(env.DB, retryNotes, now)) - 1 : -1;
  const childStart = statements.length;
  const childStatements = insertChildTasksStatements(env.DB, childList, now, {
    status: "queued",
    onlyUnderDoneParent: true,
  });
  statements.push(
    ...childStatements,
    completeJobsStatement(env.DB, jobIds, now),
    insertWarmEventStatement(env.DB, metrics, now),
  );
  let newChildren: WarmMessage[] = [];
  // Tasks this batch's writes moved. An outcome whose write was refused (its task is closed or has moved on
  // to a newer message) is acked, not retried, and writes no marker.
  const requeuedIds = new Set<string>();
  const closedIds = new Set<string>();
  try {
    const results = await env.DB.batch(statements);
    // The generation each requeued task now has, read from the same statement that set it: a racing
    // dead-letter consumer cannot make a fresh copy stale before it is even sent.
    const requeued = (requeueAt >= 0 ? (results[requeueAt]?.results ?? []) : []) as {
      job_id: string;
      author_key: string;
      generation: number;
    }[];
    for (let i = finishStart + 1; i < finishEnd; i += 2) {
      for (const r of (results[i]?.results ?? []) as { job_id: string; author_key: string }[])
        closedIds.add(taskId({ jobId: r.job_id, authorKey: r.author_key }));
    }
    for (const r of requeued) {
      const id = taskId({ jobId: r.job_id, authorKey: r.author_key });
      generations.set(id, Number(r.generation));
      requeuedIds.add(id);
    }
    const maxDepthOf = new Map(work.map((w) => [w.body.jobId, w.body.maxDepth]));
    for (let i = childStart + 1; i < childStart + childStatements.length; i += 2) {
      const rows = (results[i]?.results ?? []) as {
        job_id: string;
        author_key: string;
        author_name: string;
        depth: number;
      }[];
      for (const row of rows) {
        newChildren.push({
          v: 1,
          jobId: row.job_id,
          authorKey: row.author_key,
          authorName: row.author_name,
          depth: Number(row.depth),
          maxDepth: maxDepthOf.get(row.job_id) ?? 0,
          gen: 0,
        });
      }
    }
  } catch (error) {
    // Nothing was recorded (a D1 batch is one transaction): every claimed message goes round again.
    metrics.done = metrics.skipped = metrics.failed = metrics.retried = metrics.works = 0;
    retryAll(`recording outcomes failed: ${String(error)}`);
    finish(env, metrics, startedAt, deps);
    return;
  }

  // 6. Fan out: only the children that did not exist get a message. They were written `queued`; one whose
  // message could not be sent goes back to `pending`, where the sweeper finds it.
  if (newChildren.length > 0) {
    const sent = await sendWarmMessages(warmQueue(env), newChildren);
    await failPoisonTasks(env.DB, sent.invalid, deps.now());
    newChildren = sent.sent;
    if (sent.unsent.length > 0) {
      try {
        await env.DB.batch(markPendingStatements(env.DB, sent.unsent, deps.now()));
      } catch (error) {
        // Left queued without a message: the stalled-job sweep re-sends it.
        console.warn(JSON.stringify({ msg: "marking unsent children pending failed", error: String(error) }));
      }
    }
  }

  // 7. Markers last: an author counts as warmed only once its works and its task are recorded.
  await Promise.all(
    done
      .filter((o) => closedIds.has(taskId(o.body)))
      .map((o) =>
        cache.set(
          cacheKeys.processedMarker(o.body.authorName),
          markerFor(o.body, o.works.length, now),
          TTL_SECONDS.processedMarker,
        ),
      ),
  );

  // 8. Deferred authors get a fresh copy (keeping their retry allowance: a spent budget or an open
  // breaker is not the author's fault), one generation on, so any stray copy of the old message is dropped.
  const deferred = outcomes.filter((o): o is Extract<Outcome, { kind: "defer" }> => o.kind === "defer");
  const byDelay = new Map<number, WarmMessage[]>();
  for (const o of deferred) {
    const gen = generations.get(taskId(o.body));
    // A deferred task whose requeue changed nothing (closed meanwhile) needs no fresh copy.
    if (gen === undefined || gen === o.body.gen) continue;
    const fresh = { ...o.body, gen };
    byDelay.set(o.delaySeconds, [...(byDelay.get(o.delaySeconds) ?? []), fresh]);
  }
  const unsent: WarmMessage[] = [];
  for (const [delaySeconds, messages] of byDelay) {
    const result = await sendWarmMessages(warmQueue(env), messages, { delaySeconds });
    unsent.push(...result.unsent);
  }
  if (unsent.length > 0) {
    // The sweeper re-sends pending tasks with their current generation.
    await env.DB.batch(markPendingStatements(env.DB, unsent, deps.now())).catch((error: unknown) =>
      console.error(
        JSON.stringify({ msg: "deferred tasks left queued without a message", error: String(error) }),
      ),
    );
  }

  // 9. Ack or retry each message on its own.
  for (const outcome of outcomes) {
    const id = taskId(outcome.body);
    if (outcome.kind === "retry" && requeuedIds.has(id))
      settle(id, (m) => m.retry({ delaySeconds: outcome.delaySeconds }));
    else settle(id, (m) => m.ack());
  }
  finish(env, metrics, startedAt, deps);
}

function backoff(
  config: Config,
  attempt: number,
  retryAfterSeconds: number | undefined,
  random: () => number,
): number {
  return retryDelaySeconds({
    attempt,
    baseSeconds: config.RETRY_BASE_SECONDS,
    maxSeconds: config.RETRY_MAX_SECONDS,
    retryAfterSeconds,
    random,
  });
}

async function warmOne(
  body: WarmMessage,
  attempt: number,
  cache: Cache,
  subrequests: Budget,
  deps: WarmDeps,
): Promise<Outcome> {
  const marker = await cache.get<ProcessedMarker>(cacheKeys.processedMarker(body.authorName));
  if (marker && isFreshEnough(marker, body, deps.now())) return { kind: "skipped", body, marker };
  // Reserve this author's worst case so authors finish one by one instead of all starving together.
  const reservation = await subrequests.reserve(
    worstCaseSubrequests(deps.config, deps.rateLimiter !== undefined),
  );
  if (!reservation) {
    return { kind: "defer", body, delaySeconds: DEFER_DELAY_SECONDS, reason: "invocation budget reached" };
  }
  try {
    const result = await fetchAuthorWorks(body.authorName, {
      config: deps.config,
      fetch: deps.fetch,
      breakers: deps.breakers,
      rateLimiter: deps.rateLimiter,
      subrequests: reservation,
    });
    return { kind: "done", body, works: result.works, reports: result.reports, requests: result.requests };
  } catch (error) {
    const failure = classifyFailure(error);
    if (failure.code === "budget_exhausted") {
      return { kind: "defer", body, delaySeconds: DEFER_DELAY_SECONDS, reason: "invocation budget reached" };
    }
    if (failure.code === "providers_held_back") {
      return {
        kind: "defer",
        body,
        delaySeconds: failure.retryAfterSeconds ?? DEFER_DELAY_SECONDS,
        reason: failure.message,
      };
    }
    if (failure.kind === "permanent")
      return { kind: "failed", body, code: failure.code, message: failure.message };
    return {
      kind: "retry",
      body,
      code: failure.code,
      message: failure.message,
      delaySeconds: backoff(deps.config, attempt, failure.retryAfterSeconds, deps.random),
      attempt,
    };
  } finally {
    reservation.release();
  }
}

/**
 * Writes one author's works (by ISBN and by title) and its list; returns how many puts it made and how
 * many of them failed (KV error, breaker open or budget: the value is not in KV either way). A key
 * another author of the batch already wrote is skipped: two puts to one key within a second are
 * throttled by KV, and one write per key is enough. `beforePut` runs just before each put takes its unit.
 */
async function writeAuthorToCache(
  cache: Cache,
  { body, works }: Extract<Outcome, { kind: "done" }>,
  written: Set<string>,
  kvWriteSlot: ReturnType<typeof createLimiter>,
  beforePut: () => void,
): Promise<{ puts: number; failed: number }> {
  const writes: { key: string; value: unknown; ttl: number }[] = [];
  const add = (key: string, value: unknown, ttl: number) => {
    if (written.has(key)) return;
    written.add(key);
    writes.push({ key, value, ttl });
  };
  for (const work of works) {
    if (work.isbn13) add(cacheKeys.bookByIsbn(work.isbn13), work, TTL_SECONDS.bookByIsbn);
    add(cacheKeys.bookByTitle(work.title, work.authors[0] ?? body.authorName), work, TTL_SECONDS.bookByTitle);
  }
  add(
    cacheKeys.authorWorks(body.authorName),
    { author: body.authorName, works, updatedAt: new Date().toISOString() },
    TTL_SECONDS.authorWorks,
  );
  const results = await Promise.all(
    writes.map((w) =>
      kvWriteSlot(() => {
        beforePut();
        return cache.set(w.key, w.value, w.ttl);
      }),
    ),
  );
  return { puts: writes.length, failed: results.filter((ok) => !ok).length };
}

/**
 * An author whose KV writes did not all land: deferred while the KV breaker is open (KV's outage is not
 * the author's fault, so its allowance is kept), retried with backoff when KV refused the writes.
 */
function cacheWriteFailed(
  body: WarmMessage,
  attempt: number,
  failed: number,
  cache: Cache,
  deps: WarmDeps,
): Outcome {
  const breaker = cache.breaker;
  if (breaker.state === "open" && breaker.openUntil !== null) {
    const delaySeconds = Math.max(DEFER_DELAY_SECONDS, Math.ceil((breaker.openUntil - deps.now()) / 1000));
    return { kind: "defer", body, delaySeconds, reason: `KV unavailable (${failed} writes not made)` };
  }
  return {
    kind: "retry",
    body,
    code: "cache_write_failed",
    message: `${failed} KV writes failed; the author's works are not cached`,
    delaySeconds: backoff(deps.config, attempt, undefined, deps.random),
    attempt,
  };
}

/**
 * The invocation's KV allowance shared by authors that finish at different times: an author is admitted
 * only if its writes fit beside what earlier authors were promised and the marker reads still to come.
 */
class KvAdmission {
  private promised = 0;
  private readonly budget: Budget;
  private unreadMarkers: number;

  constructor(budget: Budget, authors: number) {
    this.budget = budget;
    this.unreadMarkers = authors;
  }

  /** An author's marker read is done (called after it, so the read is counted twice meanwhile: safe). */
  markerRead(): void {
    this.unreadMarkers--;
  }

  admit(units: number): boolean {
    if (units > this.budget.remaining() - this.promised - this.unreadMarkers) return false;
    this.promised += units;
    return true;
  }

  /** Promised units that are no longer owed: about to be taken by a put (synchronously), or not needed. */
  settle(units: number): void {
    this.promised -= units;
  }
}

function finish(env: Env, metrics: InvocationMetrics, startedAt: number, deps: WarmDeps): void {
  metrics.durationMs = deps.now() - startedAt;
  writeAnalyticsPoint(env, metrics);
}

/** KV writes an author's result will need: ISBN and title keys per work, its list and its marker. */
function kvWritesFor(outcome: Extract<Outcome, { kind: "done" }>): number {
  return outcome.works.reduce((n, w) => n + (w.isbn13 ? 2 : 1), 0) + 2;
}
