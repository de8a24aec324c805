/**
 * The five benchmark scenarios. Each side of a comparison runs on its own fresh stack (empty state,
 * fresh stand-in), so both sides do identical work from identical state, in the same invocation.
 */
import { loadavg } from "node:os";
import type { JobProgress, JobView, StateCounts } from "../../src/api/job-responses.ts";
import { errorMessage } from "../lib/processes.ts";
import { sleep } from "../lib/sleep.ts";
import { generateAuthorList, generateLibraryExport } from "./csv.ts";
import {
  type BenchStack,
  type Counters,
  debug,
  diffCounters,
  info,
  percentile,
  round,
  type StackSpec,
  scaleCounters,
  slidingWindowMax,
  TimedOut,
  throwIfAborted,
  type WorkerClient,
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

/** One upload and what the worker counted while it ran. */
export interface UploadMeasure {
  /** "full" is the scenario's file; "probe" uploads are smaller files first, to see how time scales. */
  kind: "probe" | "full";
  rows: number;
  authors: number;
  bytes: number;
  secondsTo202: number;
  rowsPerSecond: number;
  authorsPerSecond: number;
  /** Raw counters over the upload request (the whole isolate). */
  counters: Counters;
  /** Consumer batches that started during the upload (held, see the doc): at most one per stack. */
  consumerInvocations: number;
  /** D1 work of the producer alone: raw minus the held consumer batch's claim (1 batch, 2 statements). */
  producerD1Batches: number;
  producerD1Statements: number;
  authorsPerSendBatchCall: number | null;
  /**
   * From the upload's start until its depth-0 tasks were written: on the Kindling side when the ingest stage
   * ended (polled every 100 ms after the 202, which no longer waits for them); on the naive side within its 202.
   */
  secondsToTasksWritten?: number;
  /** Naive side: how long its producer waited, inside the 202, for ingest to write the tasks it sends. */
  naiveWaitedForTasksSeconds?: number;
}

export interface IngestSide {
  mode: "kindling" | "naive";
  /** Probes first (Kindling side only), then the full file; an upload that timed out is not listed. */
  uploads: UploadMeasure[];
  /** The full upload, when it answered within the time limit. */
  full?: UploadMeasure;
  /**
   * Set when the full upload had not answered in time: seconds it had been running when the side's
   * time limit ran out, or when Node's fetch stopped waiting for the response headers (300 s).
   */
  timedOutAfterSeconds?: number;
  /** When the full upload started and when it was given up (performance.now()). */
  fullStartedAt?: number;
  fullStoppedAt?: number;
  conditions?: Conditions;
}

export interface IngestResult {
  rows: number;
  distinctAuthors: number;
  rowsWithAdditionalAuthors: number;
  bytes: number;
  kindling: IngestSide;
  naive: IngestSide;
  /** Growth of time-to-202 with authors between the probes and the next size: time ∝ authors^exponent. */
  scalingExponent: number | null;
  errors: string[];
}

/**
 * A stack whose consumers are held (see BENCHMARKS.md): every stand-in request hangs and the worker waits up
 * to 10 min, so the one consumer batch miniflare delivers at a time blocks there after its claim, and the
 * counters are the producer's own. Rates 0: no rate-limiter call before the (hanging) fetch.
 */
export const HELD_CONSUMERS: Omit<StackSpec, "name"> = {
  upstream: { hangRate: 1 },
  vars: {
    UPSTREAM_TIMEOUT_MS: "600000",
    OPENLIBRARY_RATE_PER_SECOND: "0",
    GOOGLE_BOOKS_RATE_PER_SECOND: "0",
  },
  sweepEverySeconds: 0,
};

/** Smaller files uploaded on a stack of their own (Kindling side), to show how the time to 202 scales. */
const PROBE_AUTHORS = [1_000, 3_000, 6_000];

function measureUpload(
  kind: UploadMeasure["kind"],
  rows: number,
  authors: number,
  bytes: number,
  ms: number,
  queued: number,
  counters: Counters,
): UploadMeasure {
  const seconds = ms / 1000;
  const held = counters.consumerInvocations;
  return {
    kind,
    rows,
    authors: queued || authors,
    bytes,
    secondsTo202: round(seconds, 3),
    rowsPerSecond: round(rows / seconds, 0),
    authorsPerSecond: round((queued || authors) / seconds, 0),
    counters,
    consumerInvocations: held,
    producerD1Batches: counters.d1Batches - counters.consumerD1Batches,
    producerD1Statements: counters.d1Statements - counters.consumerD1Statements,
    // Messages per call (authors and, since #11, ISBN items: every message of the upload counts).
    authorsPerSendBatchCall:
      counters.queueSendBatchCalls > 0
        ? round((counters.queueMessagesSent || queued || authors) / counters.queueSendBatchCalls, 1)
        : null,
  };
}

interface UploadFile {
  kind: UploadMeasure["kind"];
  csv: string;
  rows: number;
  authors: number;
  bytes: number;
}

async function ingestSide(
  side: IngestSide,
  files: UploadFile[],
  signal: AbortSignal,
  uploadTimeoutMs: number,
  stackName: string,
): Promise<void> {
  await withStack({ name: stackName, ...HELD_CONSUMERS }, signal, async (stack) => {
    side.conditions = conditions(stack);
    if (side.mode === "naive") await stack.api.setModes({ producer: "naive" });
    for (const file of files) {
      await stack.api.resetCounters(signal);
      info(
        `  ${side.mode} producer: uploading ${file.kind === "probe" ? "probe " : ""}${file.rows.toLocaleString("en-US")} rows / ` +
          `${file.authors.toLocaleString("en-US")} authors (${(file.bytes / 1e6).toFixed(1)} MB) …`,
      );
      const uploadStarted = performance.now();
      if (file.kind === "full") side.fullStartedAt = uploadStarted;
      let upload: Awaited<ReturnType<typeof stack.api.upload>>;
      try {
        upload = await stack.api.upload(file.csv, 0, signal, uploadTimeoutMs);
      } catch (error) {
        if (file.kind === "full") side.fullStoppedAt = performance.now();
        // Node's fetch (undici) stops waiting for response headers after 300 s: no answer in time.
        if (
          /UND_ERR_HEADERS_TIMEOUT/.test(`${errorMessage(error)} ${String((error as Error).cause ?? "")}`)
        ) {
          const seconds = Math.round((performance.now() - uploadStarted) / 1000);
          throw new TimedOut(
            `the ${file.kind} upload`,
            seconds,
            "no response: Node's fetch stops waiting for the response headers after 300 s",
          );
        }
        throw error;
      }
      const counters = await stack.api.counters(signal);
      const queued = Number(upload.body.authorsQueued ?? 0) + Number(upload.body.authorsPending ?? 0);
      const m = measureUpload(
        file.kind,
        file.rows,
        file.authors,
        file.bytes,
        upload.msToResponse,
        queued,
        counters,
      );
      if (side.mode === "kindling") {
        const ended = await waitForIngest(stack.api, String(upload.body.jobId), signal);
        m.secondsToTasksWritten = round((ended - uploadStarted) / 1000, 3);
      } else {
        m.naiveWaitedForTasksSeconds = round(counters.naiveWaitedForTasksMs / 1000, 3);
        m.secondsToTasksWritten = m.secondsTo202;
      }
      side.uploads.push(m);
      if (file.kind === "full") side.full = m;
      info(
        `  ${side.mode}: 202 after ${m.secondsTo202} s · ${m.rowsPerSecond.toLocaleString("en-US")} rows/s · ` +
          `sendBatch ${counters.queueSendBatchCalls} · send ${counters.queueSendCalls} · ` +
          `D1 ${counters.d1Batches} batches / ${counters.d1Statements} statements`,
      );
    }
  });
}

/** Polls the job every 100 ms until its ingest stage has ended; returns when (performance.now()). */
async function waitForIngest(api: WorkerClient, jobId: string, signal: AbortSignal): Promise<number> {
  const until = performance.now() + 300_000;
  while (performance.now() < until) {
    const view = (await api.progress(jobId, signal)) as JobView;
    const ingest = view.stages.find((s) => s.stage === "ingest");
    if (ingest?.status === "SUCCESS") return performance.now();
    if (ingest && ingest.status !== "PENDING" && ingest.status !== "RUNNING")
      throw new Error(`job ${jobId}: ingest ended ${ingest.status} (${ingest.message ?? ""})`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new TimedOut(`job ${jobId}'s ingest stage`, 300);
}

export async function runIngest(
  sizes: Sizes,
  sideTimeouts: { kindlingSeconds: number; naiveSeconds: number },
  runSide: <T>(what: string, seconds: number, fn: (signal: AbortSignal) => Promise<T>) => Promise<T>,
): Promise<IngestResult> {
  const started = performance.now();
  const file = generateLibraryExport({ rows: sizes.ingestRows, distinctAuthors: sizes.ingestAuthors });
  const rowsPerAuthor = sizes.ingestRows / sizes.ingestAuthors;
  const probes = PROBE_AUTHORS.filter((a) => a < sizes.ingestAuthors).map((authors) => {
    const rows = Math.round(authors * rowsPerAuthor);
    const probe = generateLibraryExport({ rows, distinctAuthors: authors, seed: 1000 + authors });
    const upload: UploadFile = { kind: "probe", csv: probe.csv, rows, authors, bytes: probe.bytes };
    return upload;
  });
  debug(
    `generated ${file.rows} rows, ${file.distinctAuthors} authors, ${file.bytes} bytes in ${Math.round(performance.now() - started)} ms`,
  );
  const full: UploadFile = {
    kind: "full",
    csv: file.csv,
    rows: file.rows,
    authors: file.distinctAuthors,
    bytes: file.bytes,
  };
  const result: IngestResult = {
    rows: file.rows,
    distinctAuthors: file.distinctAuthors,
    rowsWithAdditionalAuthors: file.rowsWithAdditionalAuthors,
    bytes: file.bytes,
    kindling: { mode: "kindling", uploads: [] },
    naive: { mode: "naive", uploads: [] },
    scalingExponent: null,
    errors: [],
  };
  // The full file goes first on a fresh stack on both sides (identical state); the probes get a stack
  // of their own, so their jobs and queue backlog do not weigh on the measured upload.
  const sides: [IngestSide, UploadFile[], number, string][] = [
    [result.kindling, probes, sideTimeouts.kindlingSeconds, "ingest-kindling-probes"],
    [result.kindling, [full], sideTimeouts.kindlingSeconds, "ingest-kindling"],
    [result.naive, [full], sideTimeouts.naiveSeconds, "ingest-naive"],
  ];
  for (const [side, files, seconds, stackName] of sides) {
    if (files.length === 0) continue;
    try {
      await runSide(`ingest (${stackName})`, seconds, (s) =>
        ingestSide(side, files, s, seconds * 1000, stackName),
      );
    } catch (error) {
      if (error instanceof TimedOut && files.some((f) => f.kind === "full") && !side.full) {
        const { fullStartedAt: from, fullStoppedAt: to } = side;
        side.timedOutAfterSeconds =
          from === undefined ? seconds : Math.round(((to ?? performance.now()) - from) / 1000);
      }
      result.errors.push(`${side.mode} side: ${errorMessage(error)}`);
    }
  }
  // time ∝ authors^k between the two largest uploads that answered
  const done = result.kindling.uploads;
  const a = done.at(-2);
  const b = done.at(-1);
  if (a && b && b.authors > a.authors) {
    result.scalingExponent = round(
      Math.log(b.secondsTo202 / a.secondsTo202) / Math.log(b.authors / a.authors),
      2,
    );
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
  /** The shortest time in which R + 1 consecutive requests arrived (> 1000 ms = never R + 1 in a second). */
  shortestSpanOfRPlusOneMs: number | null;
  responses429: number;
  /**
   * Requests come in bursts separated by idle gaps (a gap is longer than 1.5 × the slot spacing):
   * how many bursts, their mean size, and the share of the busy period spent in the gaps.
   */
  bursts: {
    count: number;
    meanSize: number;
    meanGapMs: number;
    idleShare: number;
    /** Median time between consecutive requests inside a burst: the limiter's slot spacing, measured. */
    medianSpacingMs: number;
  };
  byStatus: Record<string, number>;
  perSecond: number[];
  conditions: Conditions;
}

/**
 * The politeness scenario measures the limiter, so the worker must want more than R requests/s. Locally
 * each author's KV writes (serialised by the simulator, ~1.4 ms each) cap demand at ~8 authors/s with
 * the default 200 works per author; with 5 each, demand exceeds R and the limiter sets the pace.
 */
export const POLITENESS_WORKS_PER_AUTHOR = 5;

async function politenessRun(rate: number, seconds: number, signal: AbortSignal): Promise<PolitenessRun> {
  const authors = Math.ceil(rate * seconds);
  const latencyMs = 10;
  const file = generateAuthorList(`Polite Author R${rate}`, authors);
  return withStack(
    {
      name: `politeness-r${rate}`,
      upstream: { rateLimitPerSecond: rate, latencyMs },
      vars: {
        MAX_WORKS_PER_AUTHOR: String(POLITENESS_WORKS_PER_AUTHOR),
        OPENLIBRARY_RATE_PER_SECOND: String(rate),
        GOOGLE_BOOKS_ENABLED: "false",
        // This scenario measures the limiter's pace under more demand than R: one author per request.
        OPENLIBRARY_AUTHORS_PER_REQUEST: "1",
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
        shortestSpanOfRPlusOneMs: shortestSpan(arrivals, rate + 1),
        responses429: stats.byStatus["429"] ?? 0,
        bursts: burstsOf(arrivals, 1000 / rate),
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

/** The shortest time (ms) covered by `n` consecutive sorted timestamps; null when there are fewer. */
function shortestSpan(sorted: readonly number[], n: number): number | null {
  let best: number | null = null;
  for (let i = 0; i + n - 1 < sorted.length; i++) {
    const span = (sorted[i + n - 1] as number) - (sorted[i] as number);
    if (best === null || span < best) best = span;
  }
  return best === null ? null : round(best, 1);
}

/**
 * Splits sorted arrival times into bursts wherever a gap exceeds 1.5 × the nominal spacing (1000 / R);
 * the idle share counts, in each such gap, the time beyond the spacing measured inside the bursts.
 */
function burstsOf(arrivals: readonly number[], nominalSpacingMs: number): PolitenessRun["bursts"] {
  if (arrivals.length < 2) {
    return {
      count: arrivals.length,
      meanSize: arrivals.length,
      meanGapMs: 0,
      idleShare: 0,
      medianSpacingMs: 0,
    };
  }
  const gaps: number[] = [];
  const inside: number[] = [];
  for (let i = 1; i < arrivals.length; i++) {
    const gap = (arrivals[i] as number) - (arrivals[i - 1] as number);
    if (gap > 1.5 * nominalSpacingMs) gaps.push(gap);
    else inside.push(gap);
  }
  const spacing = inside.length > 0 ? percentile(inside, 50) : nominalSpacingMs;
  const span = (arrivals.at(-1) as number) - (arrivals[0] as number);
  const idle = gaps.reduce((sum, g) => sum + Math.max(0, g - spacing), 0);
  return {
    count: gaps.length + 1,
    meanSize: round(arrivals.length / (gaps.length + 1), 1),
    meanGapMs: gaps.length > 0 ? round(gaps.reduce((a, b) => a + b, 0) / gaps.length, 0) : 0,
    idleShare: span > 0 ? round(idle / span, 3) : 0,
    medianSpacingMs: round(spacing, 1),
  };
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
      const response = await fetch(url, {
        headers: { Authorization: `Bearer ${stack.token}` },
        signal: AbortSignal.any([signal, AbortSignal.timeout(30_000)]),
      });
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
  /** Every warm-consumer D1 round trip ÷ message batches, retries and deferrals included. */
  d1BatchesPerMessageBatch: number;
  /** The same over the message batches made only of first deliveries (the happy path in a fault-free run). */
  happyPath: { messageBatches: number; d1Batches: number; d1BatchesPerMessageBatch: number };
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
    d1BatchesPerMessageBatch: per(c.consumerD1Batches, c.consumerInvocations),
    happyPath: {
      messageBatches: c.firstDeliveryInvocations,
      d1Batches: c.firstDeliveryD1Batches,
      d1BatchesPerMessageBatch: per(c.firstDeliveryD1Batches, c.firstDeliveryInvocations),
    },
    messagesPerBatch: per(c.consumerMessages, c.consumerInvocations),
  };
}
