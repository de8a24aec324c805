/**
 * Sharing the upstream across jobs (issue #13): the `priority`, `fairness` and `backpressure` scenarios.
 * Each runs the real worker against the stand-in, which enforces the provider's rate with 429s, and
 * attributes every Open Library request to the job that owns its authors: each job's authors are a
 * disjoint synthetic set ("Prio Big Author 0001" …), and a grouped query naming several jobs' authors is
 * split between them by the number of authors each has in it. Google Books is off, so Open Library is the
 * one provider and the bottleneck. Writes bench/sharing.json.
 */

import { execFileSync } from "node:child_process";
import { readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { JobProgress } from "../../src/api/job-responses.ts";
import { REPO_ROOT } from "../lib/processes.ts";
import { readSavedJson } from "../lib/saved-json.ts";
import { sleep } from "../lib/sleep.ts";
import { type BenchStack, info, round, slidingWindowMax, waitForJob, withStack } from "./harness.ts";

export const SHARING_RESULTS = join(REPO_ROOT, "bench", "sharing.json");
/** Open Library's rate here: low enough that the 2,000-author job takes minutes at 10 authors a request. */
export const RATE = 1;
export const LATENCY_MS = 100;
/** Few works per author, so local KV writes never set the pace (see POLITENESS_WORKS_PER_AUTHOR). */
export const WORKS_PER_AUTHOR = 5;

export const SHARING_TARGETS = { priorityRatio: 2, secondStartSeconds: 5, shareMin: 0.4, shareMax: 0.6 };

export const SHARING_SCENARIOS = ["priority", "fairness", "backpressure"] as const;
export type SharingScenario = (typeof SHARING_SCENARIOS)[number];

/** What the provider saw during one stack's run. */
export interface Politeness {
  requests: number;
  maxInAnyOneSecond: number;
  responses429: number;
}

export interface JobTiming {
  label: string;
  authors: number;
  priority: string;
  status: string;
  /** From the upload's request to the job's finished status, seconds. */
  secondsToComplete: number;
  /** From the upload's request to the first upstream request naming one of its authors, seconds. */
  secondsToFirstRequest: number | null;
  /** Open Library requests attributed to the job (fractional when a grouped query named several jobs). */
  requests: number;
}

/** When and from which commit a scenario was measured (the file may hold scenarios from several runs). */
export interface Measured {
  at: string;
  commit?: string;
  quick: boolean;
}

export interface PriorityResult {
  measured?: Measured;
  rate: number;
  standalone: JobTiming;
  withBig: { big: JobTiming; small: JobTiming };
  /** The small job's time to complete beside the big one ÷ alone. */
  ratio: number;
  politeness: { standalone: Politeness; withBig: Politeness };
}

export interface FairnessResult {
  measured?: Measured;
  rate: number;
  jobs: [JobTiming, JobTiming];
  /** The second job's upload to its first upstream request. */
  secondStartSeconds: number | null;
  /** From the second upload until the first job finishes: each job's share of the provider's requests. */
  window: { seconds: number; requests: number; shares: [number, number] };
  politeness: Politeness;
}

export interface BackpressureResult {
  measured?: Measured;
  rate: number;
  limitSeconds: number;
  highBypassSeconds: number;
  accepted: { authors: number; msToResponse: number };
  refused: {
    status: number;
    msToResponse: number;
    retryAfter: string | null;
    code: string | null;
    details: Record<string, unknown> | null;
    /** Jobs listed and files in the local R2 store, before and after the refused upload. */
    jobsBefore: number;
    jobsAfter: number;
    r2FilesBefore: number;
    r2FilesAfter: number;
  };
  high: { status: number; msToResponse: number };
  politeness: Politeness;
}

export interface SharingResult {
  generatedAt: string;
  /** The commit the scripts ran from (the worker is bundled from the working tree at the start). */
  commit?: string;
  /** Set by hand when a run needs context (e.g. which scheduling branches were merged). */
  note: string;
  priority?: PriorityResult;
  fairness?: FairnessResult;
  backpressure?: BackpressureResult;
  errors: string[];
}

// ---------------------------------------------------------------------------------------------------------
// Inputs, the stack, attribution
// ---------------------------------------------------------------------------------------------------------

/** A two-column export naming `count` authors "<prefix> 0001" …: author tasks only, no ISBN items. */
function authorCsv(prefix: string, count: number): string {
  const lines = ["Title,Author"];
  for (let i = 1; i <= count; i++) lines.push(`Book ${i},${prefix} ${String(i).padStart(4, "0")}`);
  return `${lines.join("\n")}\n`;
}

const now = () => performance.timeOrigin + performance.now();

export interface Arrival {
  at: number;
  /** Authors of each tracked prefix the request named. */
  byPrefix: Record<string, number>;
}

/** Logs every Open Library search with the authors of each prefix it names. */
function attribute(stack: BenchStack, prefixes: readonly string[]): Arrival[] {
  const arrivals: Arrival[] = [];
  const original = stack.fake.fetch.bind(stack.fake);
  stack.fake.fetch = (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input), "http://stand-in");
    if (url.pathname === "/search.json") {
      const text = [...url.searchParams.values()].join(" ").toLowerCase();
      const byPrefix: Record<string, number> = {};
      for (const p of prefixes) byPrefix[p] = text.split(`${p.toLowerCase()} `).length - 1;
      arrivals.push({ at: now(), byPrefix });
    }
    return original(input, init);
  };
  return arrivals;
}

/** Requests attributed to `prefix` within [from, to): a request naming k of n authors counts k / n. */
export function requestsOf(arrivals: readonly Arrival[], prefix: string, from = 0, to = Infinity): number {
  let sum = 0;
  for (const a of arrivals) {
    if (a.at < from || a.at >= to) continue;
    const named = Object.values(a.byPrefix).reduce((x, y) => x + y, 0);
    if (named > 0) sum += (a.byPrefix[prefix] ?? 0) / named;
  }
  return sum;
}

function firstRequestOf(arrivals: readonly Arrival[], prefix: string): number | null {
  return arrivals.find((a) => (a.byPrefix[prefix] ?? 0) > 0)?.at ?? null;
}

function politeness(stack: BenchStack, arrivals: readonly Arrival[]): Politeness {
  const stats = stack.fake.stats();
  return {
    requests: arrivals.length,
    maxInAnyOneSecond: slidingWindowMax(
      arrivals.map((a) => a.at),
      1000,
    ),
    responses429: stats.byStatus["429"] ?? 0,
  };
}

function sharingStack<T>(
  name: string,
  signal: AbortSignal,
  fn: (stack: BenchStack) => Promise<T>,
  vars: Record<string, string> = {},
): Promise<T> {
  return withStack(
    {
      name,
      upstream: { latencyMs: LATENCY_MS, openLibraryRateLimitPerSecond: RATE },
      vars: {
        OPENLIBRARY_RATE_PER_SECOND: String(RATE),
        GOOGLE_BOOKS_ENABLED: "false",
        MAX_WORKS_PER_AUTHOR: String(WORKS_PER_AUTHOR),
        ...vars,
      },
      sweepEverySeconds: 30,
    },
    signal,
    fn,
  );
}

interface Posted {
  status: number;
  msToResponse: number;
  startedAt: number;
  headers: Headers;
  body: Record<string, unknown>;
}

/** POST /api/jobs with a raw CSV body at maxDepth 0 and the given priority. */
async function post(stack: BenchStack, csv: string, priority: string, signal: AbortSignal): Promise<Posted> {
  const startedAt = now();
  const response = await fetch(`${stack.url}/api/jobs?maxDepth=0&priority=${priority}&filename=bench.csv`, {
    method: "POST",
    headers: { Authorization: `Bearer ${stack.token}`, "Content-Type": "text/csv" },
    body: Buffer.from(csv),
    signal: AbortSignal.any([signal, AbortSignal.timeout(120_000)]),
  });
  const msToResponse = now() - startedAt;
  const text = await response.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { text: text.slice(0, 500) };
  }
  return {
    status: response.status,
    msToResponse: round(msToResponse, 1),
    startedAt,
    headers: response.headers,
    body,
  };
}

async function accepted(
  stack: BenchStack,
  csv: string,
  priority: string,
  signal: AbortSignal,
): Promise<Posted> {
  const posted = await post(stack, csv, priority, signal);
  if (posted.status !== 202)
    throw new Error(`upload answered ${posted.status}: ${JSON.stringify(posted.body)}`);
  return posted;
}

/** Waits for the job and times it from its upload's request, with its attributed requests. */
async function timing(
  stack: BenchStack,
  posted: Posted,
  label: string,
  authors: number,
  priority: string,
  arrivals: readonly Arrival[],
  signal: AbortSignal,
): Promise<JobTiming & { finishedAt: number }> {
  const done = await waitForJob(stack.api, String(posted.body.jobId), signal, { pollMs: 250 });
  const finishedAt = performance.timeOrigin + done.finishedAt;
  const first = firstRequestOf(arrivals, label);
  return {
    label,
    authors,
    priority,
    status: (done.progress as JobProgress).status,
    secondsToComplete: round((finishedAt - posted.startedAt) / 1000, 1),
    secondsToFirstRequest: first === null ? null : round((first - posted.startedAt) / 1000, 1),
    requests: round(requestsOf(arrivals, label), 1),
    finishedAt,
  };
}

const strip = ({ finishedAt: _, ...t }: JobTiming & { finishedAt: number }): JobTiming => t;

// ---------------------------------------------------------------------------------------------------------
// The scenarios
// ---------------------------------------------------------------------------------------------------------

const BIG = "Prio Big Author";
const SMALL = "Prio Small Author";

/** A 20-author high job alone, then 5 s after a 2,000-author normal job; each on a fresh stack. */
async function runPriority(quick: boolean, signal: AbortSignal): Promise<PriorityResult> {
  const bigAuthors = quick ? 300 : 2000;
  const smallCsv = authorCsv(SMALL, 20);
  const standalone = await sharingStack("priority-alone", signal, async (stack) => {
    const arrivals = attribute(stack, [SMALL]);
    info("  priority: the 20-author high job alone …");
    const posted = await accepted(stack, smallCsv, "high", signal);
    const t = await timing(stack, posted, SMALL, 20, "high", arrivals, signal);
    info(`  priority: alone in ${t.secondsToComplete} s`);
    return { timing: strip(t), politeness: politeness(stack, arrivals) };
  });
  const withBig = await sharingStack("priority-with-big", signal, async (stack) => {
    const arrivals = attribute(stack, [BIG, SMALL]);
    info(`  priority: ${bigAuthors}-author normal job, then the 20-author high job 5 s later …`);
    const bigPosted = await accepted(stack, authorCsv(BIG, bigAuthors), "normal", signal);
    await sleep(Math.max(0, bigPosted.startedAt + 5000 - now()), signal);
    const smallPosted = await accepted(stack, smallCsv, "high", signal);
    const [big, small] = await Promise.all([
      timing(stack, bigPosted, BIG, bigAuthors, "normal", arrivals, signal),
      timing(stack, smallPosted, SMALL, 20, "high", arrivals, signal),
    ]);
    info(`  priority: small in ${small.secondsToComplete} s beside the big job (${big.secondsToComplete} s)`);
    return { big: strip(big), small: strip(small), politeness: politeness(stack, arrivals) };
  });
  return {
    rate: RATE,
    standalone: standalone.timing,
    withBig: { big: withBig.big, small: withBig.small },
    ratio: round(withBig.small.secondsToComplete / Math.max(0.1, standalone.timing.secondsToComplete), 2),
    politeness: { standalone: standalone.politeness, withBig: withBig.politeness },
  };
}

const FAIR_ONE = "Fair One Author";
const FAIR_TWO = "Fair Two Author";

/** Two 500-author normal jobs 2 s apart on one stack. */
async function runFairness(quick: boolean, signal: AbortSignal): Promise<FairnessResult> {
  const authors = quick ? 150 : 500;
  return sharingStack("fairness", signal, async (stack) => {
    const arrivals = attribute(stack, [FAIR_ONE, FAIR_TWO]);
    info(`  fairness: two ${authors}-author normal jobs 2 s apart …`);
    const one = await accepted(stack, authorCsv(FAIR_ONE, authors), "normal", signal);
    await sleep(Math.max(0, one.startedAt + 2000 - now()), signal);
    const two = await accepted(stack, authorCsv(FAIR_TWO, authors), "normal", signal);
    const [a, b] = await Promise.all([
      timing(stack, one, FAIR_ONE, authors, "normal", arrivals, signal),
      timing(stack, two, FAIR_TWO, authors, "normal", arrivals, signal),
    ]);
    // "While both run": from the second upload until the first of the two finishes.
    const from = two.startedAt;
    const to = Math.min(a.finishedAt, b.finishedAt);
    const oneIn = requestsOf(arrivals, FAIR_ONE, from, to);
    const twoIn = requestsOf(arrivals, FAIR_TWO, from, to);
    const total = oneIn + twoIn;
    const share = (n: number) => (total > 0 ? round(n / total, 3) : 0);
    const result: FairnessResult = {
      rate: RATE,
      jobs: [strip(a), strip(b)],
      secondStartSeconds: b.secondsToFirstRequest,
      window: {
        seconds: round(Math.max(0, to - from) / 1000, 1),
        requests: round(total, 1),
        shares: [share(oneIn), share(twoIn)],
      },
      politeness: politeness(stack, arrivals),
    };
    info(
      `  fairness: second started after ${result.secondStartSeconds ?? "—"} s · shares while both ran ` +
        `${(result.window.shares[0] * 100).toFixed(1)} % / ${(result.window.shares[1] * 100).toFixed(1)} %`,
    );
    return result;
  });
}

/** Files under the stack's local R2 store (what an upload stores shows up here). */
function r2Files(stack: BenchStack): number {
  const root = join(stack.persistTo, "v3", "r2");
  let count = 0;
  const walk = (dir: string) => {
    let names: string[] = [];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else count++;
    }
  };
  walk(root);
  return count;
}

async function jobCount(stack: BenchStack, signal: AbortSignal): Promise<number> {
  const response = await fetch(`${stack.url}/api/jobs?limit=100`, {
    headers: { Authorization: `Bearer ${stack.token}` },
    signal,
  });
  return ((await response.json()) as { jobs: unknown[] }).jobs.length;
}

/**
 * A 400-author job fills the backlog (400 × 0.19 requests at 1/s ≈ 76 s, past a 60 s limit and within the
 * 90 s `high` bypass); a second 400-author normal upload is refused, a `high` one accepted.
 */
async function runBackpressure(signal: AbortSignal): Promise<BackpressureResult> {
  const limitSeconds = 60;
  const highBypassSeconds = 30;
  const authors = 400;
  return sharingStack(
    "backpressure",
    signal,
    async (stack) => {
      const arrivals = attribute(stack, []);
      info(`  backpressure: a ${authors}-author job, then the same size again (normal, then high) …`);
      const first = await accepted(stack, authorCsv("Back First Author", authors), "normal", signal);
      const jobsBefore = await jobCount(stack, signal);
      const r2FilesBefore = r2Files(stack);
      const refused = await post(stack, authorCsv("Back Second Author", authors), "normal", signal);
      const jobsAfter = await jobCount(stack, signal);
      const r2FilesAfter = r2Files(stack);
      const high = await post(stack, authorCsv("Back High Author", authors), "high", signal);
      const error = (refused.body.error ?? null) as {
        code?: string;
        details?: Record<string, unknown>;
      } | null;
      // Let both accepted jobs finish so the provider's side of the run is measured whole.
      for (const posted of [first, high]) {
        if (posted.status === 202)
          await waitForJob(stack.api, String(posted.body.jobId), signal, { pollMs: 500 });
      }
      const result: BackpressureResult = {
        rate: RATE,
        limitSeconds,
        highBypassSeconds,
        accepted: { authors, msToResponse: first.msToResponse },
        refused: {
          status: refused.status,
          msToResponse: refused.msToResponse,
          retryAfter: refused.headers.get("Retry-After"),
          code: error?.code ?? null,
          details: error?.details ?? null,
          jobsBefore,
          jobsAfter,
          r2FilesBefore,
          r2FilesAfter,
        },
        high: { status: high.status, msToResponse: high.msToResponse },
        politeness: politeness(stack, arrivals),
      };
      info(
        `  backpressure: accepted in ${first.msToResponse} ms · refused ${refused.status} ${result.refused.code} in ` +
          `${refused.msToResponse} ms (Retry-After ${result.refused.retryAfter}) · jobs ${jobsBefore}→${jobsAfter} · ` +
          `R2 files ${r2FilesBefore}→${r2FilesAfter} · high ${high.status}`,
      );
      return result;
    },
    { BACKLOG_LIMIT_SECONDS: String(limitSeconds), BACKLOG_HIGH_BYPASS_SECONDS: String(highBypassSeconds) },
  );
}

/** Runs the selected scenarios, each in its own time limit; a full run writes bench/sharing.json. */
export async function runSharing(
  selected: readonly SharingScenario[],
  runSide: <T>(what: string, seconds: number, fn: (signal: AbortSignal) => Promise<T>) => Promise<T>,
  opts: { quick: boolean; write: boolean },
): Promise<SharingResult> {
  // What this run measured (printed); the file keeps the scenarios it did not run from the last one, each
  // with its own `measured` stamp.
  const result: SharingResult = {
    generatedAt: new Date().toISOString(),
    commit: headCommit(),
    note: "",
    errors: [],
  };
  const measured = { at: result.generatedAt, commit: result.commit, quick: opts.quick };
  const attempt = async (name: SharingScenario, seconds: number, fn: (s: AbortSignal) => Promise<void>) => {
    if (!selected.includes(name)) return;
    try {
      await runSide(name, seconds, fn);
    } catch (error) {
      result.errors.push(`${name}: ${error instanceof Error ? error.message : String(error)}`);
    }
  };
  await attempt("priority", 900, async (s) => {
    result.priority = { ...(await runPriority(opts.quick, s)), measured };
  });
  await attempt("fairness", 600, async (s) => {
    result.fairness = { ...(await runFairness(opts.quick, s)), measured };
  });
  await attempt("backpressure", 300, async (s) => {
    result.backpressure = { ...(await runBackpressure(s)), measured };
  });
  if (!opts.quick || opts.write) {
    const saved = savedSharing();
    const kept = Object.fromEntries(
      SHARING_SCENARIOS.filter((n) => !selected.includes(n) && saved?.[n]).map((n) => [n, saved?.[n]]),
    );
    writeFileSync(SHARING_RESULTS, `${JSON.stringify({ ...result, ...kept }, null, 2)}\n`);
  }
  return result;
}

function headCommit(): string | undefined {
  try {
    return execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: REPO_ROOT, encoding: "utf8" }).trim();
  } catch {
    return undefined;
  }
}

export function savedSharing(): SharingResult | undefined {
  return readSavedJson<SharingResult>(SHARING_RESULTS);
}
