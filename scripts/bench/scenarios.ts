/**
 * The five benchmark scenarios. Each side of a comparison runs on its own fresh stack (empty state,
 * fresh stand-in), so both sides do identical work from identical state, in the same invocation.
 */
import { loadavg } from "node:os";
import { generateAuthorList, generateLibraryExport } from "./csv.ts";
import {
  type BenchStack,
  type Counters,
  debug,
  diffCounters,
  info,
  type JobProgress,
  percentile,
  round,
  type StateCounts,
  scaleCounters,
  sleep,
  slidingWindowMax,
  throwIfAborted,
  waitForJob,
  withStack,
} from "./harness.ts";

export interface Sizes {
  ingestRows: number;
  ingestAuthors: number;
  warmAuthors: number;
  politenessSeconds: number;
  politenessDefaultSeconds: number;
  progressTasks: number;
  progressRequests: number;
}

export const FULL_SIZES: Sizes = {
  ingestRows: 100_000,
  ingestAuthors: 60_000,
  warmAuthors: 2_000,
  politenessSeconds: 30,
  politenessDefaultSeconds: 20,
  progressTasks: 100_000,
  progressRequests: 200,
};

export const QUICK_SIZES: Sizes = {
  ingestRows: 10_000,
  ingestAuthors: 6_000,
  warmAuthors: 200,
  politenessSeconds: 8,
  politenessDefaultSeconds: 8,
  progressTasks: 100_000,
  progressRequests: 200,
};

/** Where the run stood when a side started: other processes on the machine and the load average. */
export interface Conditions {
  loadAverage1m: number;
  otherProcesses: string[];
}

function conditions(stack: BenchStack): Conditions {
  return { loadAverage1m: round(loadavg()[0] ?? 0, 2), otherProcesses: stack.foreign };
}

/** Waits until the counters stop moving (the last consumer invocation writes markers after completing). */
async function settledCounters(stack: BenchStack, signal: AbortSignal): Promise<Counters> {
  let previous = await stack.api.counters(signal);
  for (let i = 0; i < 20; i++) {
    await sleep(500, signal);
    const current = await stack.api.counters(signal);
    if (JSON.stringify(current) === JSON.stringify(previous)) return current;
    previous = current;
  }
  return previous;
}

/** What one GET /api/jobs/:id costs in the worker's counters, measured on an idle stack. */
async function costOfOnePoll(stack: BenchStack, jobId: string, signal: AbortSignal): Promise<Counters> {
  const samples = 10;
  const before = await stack.api.counters(signal);
  for (let i = 0; i < samples; i++) await stack.api.progress(jobId, signal);
  const after = await stack.api.counters(signal);
  return scaleCounters(diffCounters(after, before), 1 / samples);
}

// ---------------------------------------------------------------------------------------------------------
// 1. Ingest
// ---------------------------------------------------------------------------------------------------------

export interface IngestSide {
  mode: "kindling" | "naive";
  rows: number;
  bytes: number;
  authorsQueued: number;
  secondsTo202: number;
  rowsPerSecond: number;
  authorsPerSecond: number;
  /** Raw counters over the upload request (the whole isolate). */
  counters: Counters;
  /** Consumer invocations that started during the upload (held, see the doc): at most one. */
  consumerInvocationsDuringUpload: number;
  /** D1 work of the producer alone: raw minus the held consumer batch's claim (1 batch, 2 statements). */
  producerD1Batches: number;
  producerD1Statements: number;
  authorsPerSendBatchCall: number | null;
  conditions: Conditions;
}

export interface IngestResult {
  rows: number;
  distinctAuthors: number;
  rowsWithAdditionalAuthors: number;
  bytes: number;
  kindling: IngestSide;
  naive?: IngestSide;
  errors: string[];
}

async function ingestSide(
  mode: "kindling" | "naive",
  csv: string,
  rows: number,
  bytes: number,
  signal: AbortSignal,
  uploadTimeoutMs: number,
): Promise<IngestSide> {
  return withStack(
    {
      name: `ingest-${mode}`,
      // Hold the consumers (see BENCHMARKS.md): every stand-in request hangs and the worker waits up to
      // 10 min, so the one consumer batch miniflare delivers at a time blocks there after its claim,
      // and the counters below are the producer's own.
      upstream: { hangRate: 1 },
      vars: { UPSTREAM_TIMEOUT_MS: "600000" },
      sweepEverySeconds: 0,
    },
    signal,
    async (stack) => {
      const cond = conditions(stack);
      if (mode === "naive") await stack.api.setModes({ producer: "naive" });
      await stack.api.resetCounters(signal);
      info(
        `  uploading ${rows.toLocaleString("en-US")} rows (${(bytes / 1e6).toFixed(1)} MB), ${mode} producer …`,
      );
      const upload = await stack.api.upload(csv, 0, signal, uploadTimeoutMs);
      const counters = await stack.api.counters(signal);
      const authorsQueued = Number(upload.body.authorsQueued ?? 0) + Number(upload.body.authorsPending ?? 0);
      const seconds = upload.msToResponse / 1000;
      const held = counters.consumerInvocations;
      const side: IngestSide = {
        mode,
        rows,
        bytes,
        authorsQueued,
        secondsTo202: round(seconds, 3),
        rowsPerSecond: round(rows / seconds, 0),
        authorsPerSecond: round(authorsQueued / seconds, 0),
        counters,
        consumerInvocationsDuringUpload: held,
        producerD1Batches: counters.d1Batches - held,
        producerD1Statements: counters.d1Statements - 2 * held,
        authorsPerSendBatchCall:
          counters.queueSendBatchCalls > 0 ? round(authorsQueued / counters.queueSendBatchCalls, 1) : null,
        conditions: cond,
      };
      info(
        `  ${mode}: 202 after ${side.secondsTo202} s · ${side.rowsPerSecond.toLocaleString("en-US")} rows/s · ` +
          `sendBatch ${counters.queueSendBatchCalls} · send ${counters.queueSendCalls} · ` +
          `D1 ${counters.d1Batches} batches / ${counters.d1Statements} statements`,
      );
      return side;
    },
  );
}

export async function runIngest(
  sizes: Sizes,
  signal: AbortSignal,
  sideTimeouts: { kindlingSeconds: number; naiveSeconds: number },
  runSide: <T>(what: string, seconds: number, fn: (signal: AbortSignal) => Promise<T>) => Promise<T>,
): Promise<IngestResult> {
  throwIfAborted(signal);
  const started = performance.now();
  const file = generateLibraryExport({ rows: sizes.ingestRows, distinctAuthors: sizes.ingestAuthors });
  debug(
    `generated ${file.rows} rows, ${file.distinctAuthors} authors, ${file.bytes} bytes in ${Math.round(performance.now() - started)} ms`,
  );
  const kindling = await runSide("ingest (kindling producer)", sideTimeouts.kindlingSeconds, (s) =>
    ingestSide("kindling", file.csv, file.rows, file.bytes, s, sideTimeouts.kindlingSeconds * 1000),
  );
  const result: IngestResult = {
    rows: file.rows,
    distinctAuthors: file.distinctAuthors,
    rowsWithAdditionalAuthors: file.rowsWithAdditionalAuthors,
    bytes: file.bytes,
    kindling,
    errors: [],
  };
  try {
    result.naive = await runSide("ingest (naive producer)", sideTimeouts.naiveSeconds, (s) =>
      ingestSide("naive", file.csv, file.rows, file.bytes, s, sideTimeouts.naiveSeconds * 1000),
    );
  } catch (error) {
    result.errors.push(`naive side: ${error instanceof Error ? error.message : String(error)}`);
  }
  return result;
}

// ---------------------------------------------------------------------------------------------------------
// 2. Warm throughput (and 4. cost, from the same runs)
// ---------------------------------------------------------------------------------------------------------

export interface WarmSide {
  mode: "kindling" | "naive";
  rootAuthors: number;
  status: string;
  counts: StateCounts;
  byDepth: JobProgress["byDepth"];
  worksCached: number;
  seconds: number;
  authorsPerSecond: number;
  upstreamRequests: number;
  upstreamByStatus: Record<string, number>;
  polls: number;
  /** Counters at the end, raw (whole isolate: upload, consumers and the benchmark's progress polls). */
  countersRaw: Counters;
  /** What one progress poll costs (measured on the idle stack afterwards). */
  costPerPoll: Counters;
  /** Raw minus the polls: the upload plus the consumers, i.e. what warming the job cost. */
  counters: Counters;
  timedOut?: boolean;
  conditions: Conditions;
}

export interface WarmResult {
  rootAuthors: number;
  maxDepth: number;
  latencyMs: number;
  kindling: WarmSide;
  naive?: WarmSide;
  errors: string[];
}

async function warmSide(
  mode: "kindling" | "naive",
  csv: string,
  rootAuthors: number,
  maxDepth: number,
  latencyMs: number,
  signal: AbortSignal,
): Promise<WarmSide> {
  return withStack(
    {
      name: `warm-${mode}`,
      upstream: { latencyMs },
      vars: {
        OPENLIBRARY_RATE_PER_SECOND: "0",
        GOOGLE_BOOKS_RATE_PER_SECOND: "0",
        GOOGLE_BOOKS_ENABLED: "true",
      },
      // As `npm run dev:offline` runs: the cron sweep every 30 s (not counted: it runs without the
      // instrumented bindings).
      sweepEverySeconds: 30,
    },
    signal,
    async (stack) => {
      const cond = conditions(stack);
      if (mode === "naive") await stack.api.setModes({ consumer: "naive" });
      await stack.api.resetCounters(signal);
      info(`  warming ${rootAuthors} authors, maxDepth ${maxDepth}, ${mode} consumer …`);
      const started = performance.now();
      const upload = await stack.api.upload(csv, maxDepth, signal, 120_000);
      const jobId = String(upload.body.jobId);
      const done = await waitForJob(stack.api, jobId, signal, { pollMs: 250 });
      const seconds = (done.finishedAt - started) / 1000;
      const countersRaw = await settledCounters(stack, signal);
      const costPerPoll = await costOfOnePoll(stack, jobId, signal);
      const counters = diffCounters(countersRaw, scaleCounters(costPerPoll, done.polls));
      const stats = stack.fake.stats();
      const p = done.progress;
      const side: WarmSide = {
        mode,
        rootAuthors,
        status: p.status,
        counts: p.counts,
        byDepth: p.byDepth,
        worksCached: p.worksCached,
        seconds: round(seconds, 2),
        authorsPerSecond: round(p.counts.total / seconds, 2),
        upstreamRequests: stats.total,
        upstreamByStatus: stats.byStatus,
        polls: done.polls,
        countersRaw,
        costPerPoll,
        counters,
        conditions: cond,
      };
      info(
        `  ${mode}: ${p.status} · ${p.counts.total} tasks (${p.counts.done} done, ${p.counts.failed} failed, ` +
          `${p.counts.dead} dead) · ${p.worksCached} works · ${side.seconds} s · ${side.authorsPerSecond} authors/s`,
      );
      return side;
    },
  );
}

export async function runWarm(
  sizes: Sizes,
  signal: AbortSignal,
  opts: { naive: boolean; kindlingSeconds: number; naiveSeconds: number },
  runSide: <T>(what: string, seconds: number, fn: (signal: AbortSignal) => Promise<T>) => Promise<T>,
): Promise<WarmResult> {
  const maxDepth = 2;
  const latencyMs = 50;
  const file = generateAuthorList("Bench Author", sizes.warmAuthors);
  const kindling = await runSide("warm (kindling consumer)", opts.kindlingSeconds, (s) =>
    warmSide("kindling", file.csv, sizes.warmAuthors, maxDepth, latencyMs, s),
  );
  const result: WarmResult = { rootAuthors: sizes.warmAuthors, maxDepth, latencyMs, kindling, errors: [] };
  if (opts.naive) {
    try {
      result.naive = await runSide("warm (naive consumer)", opts.naiveSeconds, (s) =>
        warmSide("naive", file.csv, sizes.warmAuthors, maxDepth, latencyMs, s),
      );
    } catch (error) {
      result.errors.push(`naive side: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return result;
}

// ---------------------------------------------------------------------------------------------------------
// 3. Politeness
// ---------------------------------------------------------------------------------------------------------

export interface PolitenessRun {
  rate: number;
  authors: number;
  latencyMs: number;
  status: string;
  counts: StateCounts;
  requests: number;
  busySeconds: number;
  /** Mean of the stand-in's per-second counts over the busy period, first and last (partial) seconds left out. */
  achievedPerSecond: number;
  achievedRatio: number;
  /** (n − 1) / (last arrival − first arrival), from our own per-request timestamps. */
  achievedFromTimestamps: number;
  /** Most requests in one calendar second (the stand-in's /__stats buckets). */
  maxPerCalendarSecond: number;
  /** Most requests in any 1-second window [t, t + 1 s), from per-request timestamps (reported figure). */
  maxInAnyOneSecondWindow: number;
  responses429: number;
  byStatus: Record<string, number>;
  perSecond: number[];
  conditions: Conditions;
}

async function politenessRun(rate: number, seconds: number, signal: AbortSignal): Promise<PolitenessRun> {
  const authors = Math.ceil(rate * seconds);
  const latencyMs = 10;
  const file = generateAuthorList(`Polite Author R${rate}`, authors);
  return withStack(
    {
      name: `politeness-r${rate}`,
      upstream: { rateLimitPerSecond: rate, latencyMs },
      vars: {
        OPENLIBRARY_RATE_PER_SECOND: String(rate),
        GOOGLE_BOOKS_ENABLED: "false",
      },
      sweepEverySeconds: 30,
      recordArrivals: true,
    },
    signal,
    async (stack) => {
      const cond = conditions(stack);
      info(`  R = ${rate}/s: warming ${authors} authors (maxDepth 0, Open Library only) …`);
      const upload = await stack.api.upload(file.csv, 0, signal, 120_000);
      const done = await waitForJob(stack.api, String(upload.body.jobId), signal, { pollMs: 500 });
      const stats = stack.fake.stats();
      const arrivals = [...stack.arrivals].sort((a, b) => a - b);
      const seconds = Object.keys(stats.perSecond)
        .map(Number)
        .sort((a, b) => a - b);
      const first = seconds[0] ?? 0;
      const last = seconds.at(-1) ?? 0;
      const series: number[] = [];
      for (let s = first; s <= last; s++) series.push(stats.perSecond[String(s)] ?? 0);
      const interior = series.slice(1, -1);
      const achieved =
        interior.length > 0 ? interior.reduce((a, b) => a + b, 0) / interior.length : Number.NaN;
      const span = arrivals.length > 1 ? ((arrivals.at(-1) as number) - (arrivals[0] as number)) / 1000 : 0;
      const run: PolitenessRun = {
        rate,
        authors,
        latencyMs,
        status: done.progress.status,
        counts: done.progress.counts,
        requests: stats.total,
        busySeconds: round(span, 2),
        achievedPerSecond: round(achieved, 2),
        achievedRatio: round(achieved / rate, 3),
        achievedFromTimestamps: span > 0 ? round((arrivals.length - 1) / span, 2) : Number.NaN,
        maxPerCalendarSecond: stats.maxPerSecond,
        maxInAnyOneSecondWindow: slidingWindowMax(arrivals, 1000),
        responses429: stats.byStatus["429"] ?? 0,
        byStatus: stats.byStatus,
        perSecond: series,
        conditions: cond,
      };
      info(
        `  R = ${rate}/s: ${run.requests} requests over ${run.busySeconds} s · achieved ${run.achievedPerSecond}/s ` +
          `(${(run.achievedRatio * 100).toFixed(1)} % of R) · max ${run.maxInAnyOneSecondWindow} in any 1 s ` +
          `(calendar second max ${run.maxPerCalendarSecond}) · 429s ${run.responses429}`,
      );
      return run;
    },
  );
}

export interface PolitenessResult {
  runs: PolitenessRun[];
  errors: string[];
}

export async function runPoliteness(
  sizes: Sizes,
  signal: AbortSignal,
  runSide: <T>(what: string, seconds: number, fn: (signal: AbortSignal) => Promise<T>) => Promise<T>,
): Promise<PolitenessResult> {
  const result: PolitenessResult = { runs: [], errors: [] };
  for (const [rate, seconds] of [
    [20, sizes.politenessSeconds],
    [3, sizes.politenessDefaultSeconds],
  ] as const) {
    throwIfAborted(signal);
    try {
      result.runs.push(
        await runSide(`politeness R=${rate}`, seconds * 4 + 180, (s) => politenessRun(rate, seconds, s)),
      );
    } catch (error) {
      result.errors.push(`R=${rate}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return result;
}

// ---------------------------------------------------------------------------------------------------------
// 5. Progress read
// ---------------------------------------------------------------------------------------------------------

export interface ProgressResult {
  tasks: number;
  requests: number;
  warmupRequests: number;
  p50Ms: number;
  p95Ms: number;
  maxMs: number;
  meanMs: number;
  seedSeconds: number;
  conditions: Conditions;
}

export async function runProgress(sizes: Sizes, signal: AbortSignal): Promise<ProgressResult> {
  return withStack({ name: "progress", sweepEverySeconds: 0 }, signal, async (stack) => {
    const cond = conditions(stack);
    info(`  seeding a job with ${sizes.progressTasks.toLocaleString("en-US")} tasks …`);
    const seedStarted = performance.now();
    const seeded = await stack.api.seedJob(sizes.progressTasks, 2);
    const seedSeconds = (performance.now() - seedStarted) / 1000;
    const url = `${stack.url}/api/jobs/${seeded.jobId}`;
    const once = async (): Promise<{ ms: number; body: string }> => {
      const started = performance.now();
      const response = await fetch(url, { signal: AbortSignal.any([signal, AbortSignal.timeout(30_000)]) });
      const body = await response.text();
      const ms = performance.now() - started;
      if (!response.ok)
        throw new Error(`GET /api/jobs/:id answered HTTP ${response.status}: ${body.slice(0, 300)}`);
      return { ms, body };
    };
    const warmup = 5;
    for (let i = 0; i < warmup; i++) {
      const { body } = await once();
      if (i === 0) {
        const total = (JSON.parse(body) as JobProgress).counts.total;
        if (total !== sizes.progressTasks)
          throw new Error(`seeded job has ${total} tasks, expected ${sizes.progressTasks}`);
      }
    }
    const latencies: number[] = [];
    for (let i = 0; i < sizes.progressRequests; i++) {
      throwIfAborted(signal);
      latencies.push((await once()).ms);
    }
    const result: ProgressResult = {
      tasks: sizes.progressTasks,
      requests: latencies.length,
      warmupRequests: warmup,
      p50Ms: round(percentile(latencies, 50), 1),
      p95Ms: round(percentile(latencies, 95), 1),
      maxMs: round(Math.max(...latencies), 1),
      meanMs: round(latencies.reduce((a, b) => a + b, 0) / latencies.length, 1),
      seedSeconds: round(seedSeconds, 2),
      conditions: cond,
    };
    info(`  progress read: p50 ${result.p50Ms} ms · p95 ${result.p95Ms} ms · max ${result.maxMs} ms`);
    return result;
  });
}

// ---------------------------------------------------------------------------------------------------------
// 4. Cost per author, from the warm runs' counters
// ---------------------------------------------------------------------------------------------------------

export interface CostFigures {
  mode: "kindling" | "naive";
  tasks: number;
  works: number;
  messageBatches: number;
  totals: Counters;
  perAuthor: {
    queueMessages: number;
    queueCalls: number;
    kvReads: number;
    kvWrites: number;
    d1Batches: number;
    d1Statements: number;
    d1RowsWritten: number;
    subrequests: number;
    upstreamRequests: number;
    rateLimiterCalls: number;
  };
  perWork: { kvWrites: number; d1Statements: number; d1RowsWritten: number };
  d1BatchesPerMessageBatch: number;
  messagesPerBatch: number;
}

export function costFigures(side: WarmSide): CostFigures {
  const c = side.counters;
  const tasks = side.counts.total;
  const works = side.worksCached;
  const per = (n: number, d: number) => (d > 0 ? round(n / d, 3) : Number.NaN);
  return {
    mode: side.mode,
    tasks,
    works,
    messageBatches: c.consumerInvocations,
    totals: c,
    perAuthor: {
      queueMessages: per(c.queueMessagesSent, tasks),
      queueCalls: per(c.queueSendCalls + c.queueSendBatchCalls, tasks),
      kvReads: per(c.kvReads, tasks),
      kvWrites: per(c.kvWrites, tasks),
      d1Batches: per(c.d1Batches, tasks),
      d1Statements: per(c.d1Statements, tasks),
      d1RowsWritten: per(c.d1RowsWritten, tasks),
      subrequests: per(c.upstreamRequests + c.rateLimiterCalls, tasks),
      upstreamRequests: per(c.upstreamRequests, tasks),
      rateLimiterCalls: per(c.rateLimiterCalls, tasks),
    },
    perWork: {
      kvWrites: per(c.kvWrites, works),
      d1Statements: per(c.d1Statements, works),
      d1RowsWritten: per(c.d1RowsWritten, works),
    },
    d1BatchesPerMessageBatch: per(c.d1Batches, c.consumerInvocations),
    messagesPerBatch: per(c.consumerMessages, c.consumerInvocations),
  };
}
