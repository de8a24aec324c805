/**
 * Benchmark plumbing: one fresh offline stack (stand-in + wrangler dev, fresh persisted state) per
 * scenario side, a small client for the worker's API and test hooks, time limits, and statistics.
 */

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statfsSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import type { JobProgress } from "../../src/api/job-responses.ts";
import type { TestCounters } from "../../test/support/instrumented/counters.ts";
import type { FakeUpstream } from "../../test/support/upstream/handler.ts";
import {
  INSTRUMENTED_ENTRY,
  type OfflineStack,
  type OfflineStackOptions,
  startOfflineStack,
} from "../dev-offline.ts";
import { FINISHED, pollJob } from "../lib/poll-job.ts";
import {
  errorMessage,
  LOG_DIR,
  onCleanup,
  REPO_ROOT,
  runToCompletion,
  timestampForFile,
} from "../lib/processes.ts";
import { sleep } from "../lib/sleep.ts";

// ---------------------------------------------------------------------------------------------------------
// Logging
// ---------------------------------------------------------------------------------------------------------

let verboseLogging = false;
const runStarted = Date.now();
let stateRoot = join(REPO_ROOT, ".wrangler");

/**
 * Where each stack keeps its local state (the simulators' D1, KV and R2 files): `.wrangler` unless
 * `--state-dir` names another directory. The local KV writes every entry to a file, so on a disk whose speed
 * varies (this VM's did, 2× between runs) the warm figures vary with it; a tmpfs takes the disk out.
 */
export function setStateRoot(dir: string): void {
  stateRoot = resolve(REPO_ROOT, dir);
  mkdirSync(stateRoot, { recursive: true });
}

export function setVerbose(verbose: boolean): void {
  verboseLogging = verbose;
}

export function isVerbose(): boolean {
  return verboseLogging;
}

function stamp(): string {
  const s = (Date.now() - runStarted) / 1000;
  return `[${s.toFixed(1).padStart(6)} s]`;
}

/** Progress for the operator, on stderr (stdout keeps the table). */
export function info(message: string): void {
  process.stderr.write(`${stamp()} ${message}\n`);
}

export function debug(message: string): void {
  if (verboseLogging) process.stderr.write(`${stamp()}   ${message}\n`);
}

// ---------------------------------------------------------------------------------------------------------
// Time limits
// ---------------------------------------------------------------------------------------------------------

export class TimedOut extends Error {
  readonly seconds: number;
  constructor(what: string, seconds: number, detail?: string) {
    super(`${what} timed out after ${seconds} s${detail ? ` (${detail})` : ""}`);
    this.name = "TimedOut";
    this.seconds = seconds;
  }
}

/** What the work itself reported while being stopped, when it is more than the abort echoing back. */
function stopDetail(error: unknown): string | undefined {
  if (error === undefined || error instanceof TimedOut) return undefined;
  if (error instanceof Error && (error.name === "AbortError" || error.name === "TimeoutError"))
    return undefined;
  return errorMessage(error);
}

/**
 * Runs `fn` with an AbortSignal that fires after `seconds`; rejects with TimedOut then (after giving
 * `fn` a few seconds to notice the signal and clean up its stack).
 */
export async function withTimeout<T>(
  what: string,
  seconds: number,
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<"expired">((resolve) => {
    timer = setTimeout(() => {
      controller.abort(new TimedOut(what, seconds));
      resolve("expired");
    }, seconds * 1000);
  });
  const work = fn(controller.signal);
  let workError: unknown;
  try {
    const first = await Promise.race([work, expired]);
    if (first === "expired") {
      // Let fn's finally blocks stop its stack; do not wait forever for it.
      await Promise.race([
        work.catch((error: unknown) => {
          workError = error;
        }),
        sleep(30_000),
      ]);
      throw new TimedOut(what, seconds, stopDetail(workError));
    }
    return first as T;
  } catch (error) {
    if (controller.signal.aborted) {
      throw error instanceof TimedOut ? error : new TimedOut(what, seconds, stopDetail(error));
    }
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

export function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new Error("aborted");
}

// ---------------------------------------------------------------------------------------------------------
// Stacks
// ---------------------------------------------------------------------------------------------------------

export interface BenchStack extends OfflineStack {
  name: string;
  api: WorkerClient;
  /** The stand-in, in this process (stats, config, and the per-request arrival log below). */
  fake: FakeUpstream;
  /** Arrival times (epoch ms, sub-ms precision) of every book-API request, when `recordArrivals`. */
  arrivals: number[];
  /** Processes on the machine that are not part of this run (other engineers' tests), sampled at start. */
  foreign: string[];
}

export interface StackSpec {
  /** Short name, used in the state directory and log file names. */
  name: string;
  vars?: Record<string, string>;
  upstream?: OfflineStackOptions["upstream"];
  sweepEverySeconds?: number;
  /** Record every book-API request's arrival time (for a true sliding-window maximum). */
  recordArrivals?: boolean;
}

const CONTROL_PATHS = new Set(["/__stats", "/__config", "/__reset", "/health"]);
const runStamp = timestampForFile();

// ---------------------------------------------------------------------------------------------------------
// The code under test: one snapshot for the whole run
// ---------------------------------------------------------------------------------------------------------

/** sha256 (first 12 hex) over the files under `paths` (recursively), in path order. */
export function treeHash(paths: readonly string[]): string {
  const files: string[] = [];
  const walk = (abs: string) => {
    const info = statSync(abs, { throwIfNoEntry: false });
    if (!info) return;
    if (info.isDirectory()) for (const name of readdirSync(abs).sort()) walk(join(abs, name));
    else files.push(abs);
  };
  for (const p of paths) walk(join(REPO_ROOT, p));
  const hash = createHash("sha256");
  for (const f of files) {
    hash.update(relative(REPO_ROOT, f));
    hash.update("\0");
    hash.update(readFileSync(f));
    hash.update("\0");
  }
  return hash.digest("hex").slice(0, 12);
}

export interface CodeSnapshot {
  commit: string;
  /** `git status --porcelain` lines for src/, migrations/ and wrangler.toml (uncommitted work measured too). */
  uncommitted: string[];
  /** Hash of src/ + wrangler.toml when the worker was bundled. */
  sourceHash: string;
  /** Hash of migrations/ when the snapshot was taken (every stack applies this copy first). */
  migrationsHash: string;
  /** Migration files in the snapshot. */
  migrationFiles: string[];
  /**
   * Per stack: migration files present in the working tree but not in the snapshot when the stack
   * started (startOfflineStack applies the working tree's migrations after ours, so these would run).
   */
  extraMigrations: Record<string, string[]>;
  /** Hash of src/ + wrangler.toml at the end of the run (different = someone edited during the run). */
  sourceHashAtEnd?: string;
  /** The bundle every stack runs (a temporary directory outside the repository). */
  bundle: string;
  /**
   * The test-hooks wrapper of the rate-limiter stub calls `value.apply(stubTarget, args)`, which a
   * workerd RPC stub treats as a remote method "apply": every limiter call fails under TEST_HOOKS.
   */
  rateLimiterStubBug: boolean;
}

let snapshot: CodeSnapshot | undefined;

function wranglerJs(): string {
  const require = createRequire(import.meta.url);
  return join(require.resolve("wrangler/package.json"), "..", "bin", "wrangler.js");
}

function wranglerEnv(): NodeJS.ProcessEnv {
  return { ...process.env, WRANGLER_SEND_METRICS: "false", WRANGLER_LOG_PATH: LOG_DIR, FORCE_COLOR: "0" };
}

function git(args: string[]): string {
  try {
    return execFileSync("git", args, { cwd: REPO_ROOT, encoding: "utf8" }).trim();
  } catch {
    return "";
  }
}

/**
 * Bundles the worker once (wrangler deploy --dry-run) and runs every stack on that bundle: wrangler dev
 * would otherwise reload the worker whenever someone edits src/ mid-run (other engineers work in this
 * tree), and the two sides of a comparison could measure different code.
 */
export async function snapshotWorker(): Promise<CodeSnapshot> {
  if (snapshot) return snapshot;
  // Its own directory outside the repository, with a copy of wrangler.toml (wrangler dev looks for its
  // config next to the script): bindings, vars and compatibility settings are frozen with the code,
  // and wrangler's watcher sees only this directory, which nothing changes.
  const outAbs = mkdtempSync(join(tmpdir(), "kindling-bench-worker-"));
  onCleanup(`remove ${outAbs}`, () => rmSync(outAbs, { recursive: true, force: true }));
  const sourceHash = treeHash(["src", "test/support/instrumented", "wrangler.toml"]);
  const migrationsHash = treeHash(["migrations"]);
  cpSync(join(REPO_ROOT, "migrations"), join(outAbs, "migrations"), { recursive: true });
  await runToCompletion({
    name: "bundle",
    command: process.execPath,
    args: [wranglerJs(), "deploy", INSTRUMENTED_ENTRY, "--dry-run", "--outdir", outAbs],
    env: wranglerEnv(),
    logFile: join(LOG_DIR, `bench-${runStamp}-bundle.log`),
    verbose: isVerbose(),
    timeoutMs: 120_000,
  });
  const config = readFileSync(join(REPO_ROOT, "wrangler.toml"), "utf8");
  if (!/^main\s*=.*$/m.test(config))
    throw new Error("wrangler.toml has no `main` line to point at the bundle");
  // no_bundle: wrangler dev serves the bundle as is. Bundling again would put it under esbuild's watch
  // mode, which also watches the listings of the directories it looked in (/tmp changes all the time)
  // and reloads the worker, losing its in-memory counters and modes, whenever they change.
  writeFileSync(
    join(outAbs, "wrangler.toml"),
    `no_bundle = true\n${config
      .replace(/^main\s*=.*$/m, 'main = "entry.js"')
      // The copy lives outside the repository: the dashboard's assets are served from the repository's
      // public/ as they are, and the asset build step is not run again for the snapshot.
      .replace(/^directory\s*=\s*"\.\/public"/m, `directory = ${JSON.stringify(join(REPO_ROOT, "public"))}`)
      .replace(/^\[build\]\ncommand\s*=.*\n/m, "")}`,
  );
  snapshot = {
    commit: git(["rev-parse", "--short", "HEAD"]),
    uncommitted: git(["status", "--porcelain", "--", "src", "migrations", "wrangler.toml"])
      .split("\n")
      .filter(Boolean),
    sourceHash,
    migrationsHash,
    migrationFiles: readdirSync(join(outAbs, "migrations")).sort(),
    extraMigrations: {},
    bundle: join(outAbs, "entry.js"),
    rateLimiterStubBug: /\.apply\(stubTarget\b/.test(readFileSync(join(outAbs, "entry.js"), "utf8")),
  };
  info(
    `worker bundled from the working tree at ${snapshot.commit} (src hash ${sourceHash}) → ${snapshot.bundle}`,
  );
  return snapshot;
}

/**
 * A stack on the frozen worker bundle (see `snapshotWorker`), on free ports: what chaos and fuzz run on,
 * so an edit to src/ during their run cannot reload the worker under them.
 */
export async function startBundledStack(
  opts: Omit<OfflineStackOptions, "script" | "port" | "upstreamPort">,
): Promise<OfflineStack> {
  const code = await snapshotWorker();
  return startOfflineStack({ ...opts, script: code.bundle, port: 0, upstreamPort: 0 });
}

/** Closes the snapshot record: notes whether src/ changed while the run was going. */
export function finishSnapshot(): CodeSnapshot | undefined {
  if (snapshot) snapshot.sourceHashAtEnd = treeHash(["src", "test/support/instrumented", "wrangler.toml"]);
  return snapshot;
}

/**
 * Starts a fresh stack (own state directory, free ports, the instrumented worker), runs `fn`, then stops the
 * stack and deletes its state directory, whatever happens (also on Ctrl-C through the cleanup hooks).
 */
export async function withStack<T>(
  spec: StackSpec,
  signal: AbortSignal,
  fn: (stack: BenchStack) => Promise<T>,
): Promise<T> {
  throwIfAborted(signal);
  const persistAbs = join(stateRoot, `bench-${runStamp}-${spec.name}`);
  const persistRel = relative(REPO_ROOT, persistAbs);
  const removeState = onCleanup(`remove ${persistRel}`, () => {
    rmSync(persistAbs, { recursive: true, force: true });
  });
  let stack: OfflineStack | undefined;
  try {
    const code = await snapshotWorker();
    info(`  starting stack "${spec.name}" (state ${persistRel}) …`);
    // The snapshot's migrations first: startOfflineStack then applies the working tree's, which are
    // skipped by name (already applied) unless someone added a new file since the snapshot.
    await runToCompletion({
      name: "migrations",
      command: process.execPath,
      args: [
        wranglerJs(),
        "d1",
        "migrations",
        "apply",
        "DB",
        "--local",
        "--persist-to",
        persistAbs,
        "--config",
        join(dirname(code.bundle), "wrangler.toml"),
      ],
      env: { ...wranglerEnv(), CI: "true" },
      logFile: join(LOG_DIR, `bench-${spec.name}-${runStamp}-snapshot-migrations.log`),
      verbose: isVerbose(),
      timeoutMs: 120_000,
    });
    const extra = readdirSync(join(REPO_ROOT, "migrations")).filter((f) => !code.migrationFiles.includes(f));
    if (extra.length > 0) code.extraMigrations[spec.name] = extra;
    const started = Date.now();
    stack = await startOfflineStack({
      script: code.bundle,
      port: 0,
      upstreamPort: 0,
      persistTo: persistAbs,
      verbose: isVerbose(),
      sweepEverySeconds: spec.sweepEverySeconds ?? 0,
      logName: `bench-${spec.name}`,
      upstream: spec.upstream ?? {},
      vars: { ...spec.vars },
      log: (m) => debug(m),
    });
    ownGroups.add(stack.wrangler.pid);
    debug(`stack "${spec.name}" ready in ${((Date.now() - started) / 1000).toFixed(1)} s at ${stack.url}`);
    const fake = stack.upstream.upstream;
    const arrivals: number[] = [];
    if (spec.recordArrivals) {
      // The Node server looks `fetch` up on this object for every request: wrap it to log arrivals.
      const original = fake.fetch.bind(fake);
      fake.fetch = (input, init) => {
        const url = input instanceof Request ? input.url : String(input);
        const path = new URL(url, "http://fake-upstream").pathname;
        if (!CONTROL_PATHS.has(path)) arrivals.push(performance.timeOrigin + performance.now());
        return original(input, init);
      };
    }
    const bench: BenchStack = {
      ...stack,
      name: spec.name,
      api: new WorkerClient(stack.url, stack.token),
      fake,
      arrivals,
      foreign: foreignProcesses(),
    };
    if (bench.foreign.length > 0) debug(`other processes on the machine: ${bench.foreign.join(" | ")}`);
    // A reload restarts the isolate: in-memory counters and modes (naive!) are lost mid-measurement.
    const logFile = stack.logFile;
    const reloaded = (why?: unknown) =>
      /Reloading local server/.test(readFileSync(logFile, "utf8"))
        ? new Error(
            `wrangler reloaded the worker during the "${spec.name}" measurement (a watched file changed, ` +
              `e.g. wrangler.toml or .dev.vars); its numbers are discarded${
                why === undefined ? "" : ` (${errorMessage(why)})`
              }. Log: ${relative(REPO_ROOT, logFile)}`,
          )
        : undefined;
    let result: T;
    try {
      result = await fn(bench);
    } catch (error) {
      throw reloaded(error) ?? error;
    }
    const reload = reloaded();
    if (reload) throw reload;
    return result;
  } finally {
    if (stack) {
      debug(`stopping stack "${spec.name}"`);
      await stack.stop();
      ownGroups.delete(stack.wrangler.pid);
    }
    await removeState.run();
  }
}

/** Process groups of the stacks this run has started (wrangler leads each; workerd runs inside it). */
const ownGroups = new Set<number>();

/** workerd / vitest / wrangler processes that are not ours (another engineer's tests, a dev server). */
export function foreignProcesses(): string[] {
  let out = "";
  try {
    out = execFileSync("ps", ["-eo", "pid=,pgid=,args="], { encoding: "utf8" });
  } catch {
    return [];
  }
  const rows = out
    .split("\n")
    .map((line) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ pid: Number(m[1]), pgid: Number(m[2]), args: m[3] ?? "" }));
  const ownPgid = rows.find((r) => r.pid === process.pid)?.pgid;
  return rows
    .filter((r) => r.pid !== process.pid && r.pgid !== ownPgid && !ownGroups.has(r.pgid))
    .filter((r) => /workerd|vitest|wrangler/.test(r.args))
    .map((r) => r.args.slice(0, 120));
}

// ---------------------------------------------------------------------------------------------------------
// The worker's API and test hooks
// ---------------------------------------------------------------------------------------------------------

/** The worker's test-mode counters (`GET /__test/counters`): one definition, shared with the worker. */
export type Counters = TestCounters;

export interface UploadResult {
  status: number;
  /** Request start to the response's headers (the worker answers once the job is created and queued). */
  msToResponse: number;
  body: Record<string, unknown>;
}

export class HttpError extends Error {
  readonly status: number;
  readonly body: string;
  constructor(what: string, status: number, body: string) {
    super(`${what} answered HTTP ${status}: ${body.slice(0, 500)}`);
    this.name = "HttpError";
    this.status = status;
    this.body = body;
  }
}

export class WorkerClient {
  readonly url: string;
  readonly token: string;

  constructor(url: string, token: string) {
    this.url = url;
    this.token = token;
  }

  private async json<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const response = await fetch(`${this.url}${path}`, {
      method,
      headers: {
        Authorization: `Bearer ${this.token}`,
        ...(body === undefined ? {} : { "Content-Type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(60_000)]) : AbortSignal.timeout(60_000),
    });
    const text = await response.text();
    if (!response.ok) throw new HttpError(`${method} ${path}`, response.status, text);
    return JSON.parse(text) as T;
  }

  counters(signal?: AbortSignal): Promise<Counters> {
    return this.json("GET", "/__test/counters", undefined, signal);
  }

  resetCounters(signal?: AbortSignal): Promise<Counters> {
    return this.json("DELETE", "/__test/counters", undefined, signal);
  }

  setModes(modes: { producer?: "kindling" | "naive"; consumer?: "kindling" | "naive" }): Promise<unknown> {
    return this.json("POST", "/__test/modes", modes);
  }

  seedJob(tasks: number, maxDepth: number): Promise<{ jobId: string; tasks: number }> {
    return this.json("POST", "/__test/seed-job", { tasks, maxDepth });
  }

  progress(jobId: string, signal?: AbortSignal): Promise<JobProgress> {
    return this.json("GET", `/api/jobs/${jobId}`, undefined, signal);
  }

  /** POST /api/jobs with a raw CSV body; times the request to its answer. */
  async upload(csv: string, maxDepth: number, signal: AbortSignal, timeoutMs: number): Promise<UploadResult> {
    const body = Buffer.from(csv);
    const started = performance.now();
    const response = await fetch(`${this.url}/api/jobs?maxDepth=${maxDepth}&filename=bench.csv`, {
      method: "POST",
      headers: { Authorization: `Bearer ${this.token}`, "Content-Type": "text/csv" },
      body,
      signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
    });
    const msToResponse = performance.now() - started;
    const text = await response.text();
    if (response.status !== 202) throw new HttpError("POST /api/jobs", response.status, text);
    return { status: response.status, msToResponse, body: JSON.parse(text) as Record<string, unknown> };
  }
}

/** Polls a job until it is finished; counts the polls (each one is billable work the worker counts). */
export async function waitForJob(
  api: WorkerClient,
  jobId: string,
  signal: AbortSignal,
  opts: { pollMs?: number; onPoll?: (p: JobProgress) => void } = {},
): Promise<{ progress: JobProgress; finishedAt: number; polls: number }> {
  let polls = 0;
  let lastLine = 0;
  let finishedAt = 0;
  const progress = await pollJob(api.url, api.token, jobId, {
    intervalMs: opts.pollMs ?? 250,
    signal,
    requestTimeoutMs: 60_000,
    onProgress: (p) => {
      polls++;
      opts.onPoll?.(p);
      if (FINISHED.has(p.status)) {
        finishedAt = performance.now();
      } else if (Date.now() - lastLine > 5000) {
        lastLine = Date.now();
        const c = p.counts;
        info(
          `    ${p.status} ${p.percent.toFixed(1)}% · ${c.done + c.skipped + c.failed + c.dead}/${c.total} tasks · ${p.worksCached} works`,
        );
      }
    },
    onFailure: (failure) => {
      polls++;
      debug(`progress poll failed: ${failure.message}`);
      return "retry";
    },
  });
  throwIfAborted(signal);
  if (!progress) throw new Error(`job ${jobId}: polling stopped before it finished`);
  return { progress, finishedAt, polls };
}

export function diffCounters(after: Counters, before: Counters): Counters {
  const out = { ...after };
  for (const key of Object.keys(out) as (keyof Counters)[]) out[key] = after[key] - before[key];
  return out;
}

export function scaleCounters(c: Counters, factor: number): Counters {
  const out = { ...c };
  for (const key of Object.keys(out) as (keyof Counters)[]) out[key] = c[key] * factor;
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------------------------------------

/** Nearest-rank percentile of an unsorted sample. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] as number;
}

/** The most timestamps (ms) that fall in any half-open window [t, t + windowMs). */
export function slidingWindowMax(timestamps: readonly number[], windowMs = 1000): number {
  const t = [...timestamps].sort((a, b) => a - b);
  let best = 0;
  let start = 0;
  for (let end = 0; end < t.length; end++) {
    while ((t[end] as number) - (t[start] as number) >= windowMs) start++;
    best = Math.max(best, end - start + 1);
  }
  return best;
}

export const round = (n: number, digits = 2) =>
  Number.isFinite(n) ? Math.round(n * 10 ** digits) / 10 ** digits : n;

// ---------------------------------------------------------------------------------------------------------
// The machine
// ---------------------------------------------------------------------------------------------------------

function packageVersion(name: string): string {
  try {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, "node_modules", name, "package.json"), "utf8")) as {
      version?: string;
    };
    return pkg.version ?? "?";
  } catch {
    return "?";
  }
}

export interface MachineInfo {
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  platform: string;
  wrangler: string;
  workerd: string;
  miniflare: string;
  loadAverageAtStart: number[];
  /** Where the stacks kept their state, and whether that was a tmpfs (absent in runs before it was recorded). */
  stateDir?: string;
  stateFs?: "tmpfs" | "disk";
}

const TMPFS_MAGIC = 0x01021994;

/** Where this run's stacks keep their state, and whether that is a tmpfs. */
export function stateOfStacks(): { dir: string; fs: "tmpfs" | "disk" } {
  return {
    dir: stateRoot.startsWith(`${REPO_ROOT}/`) ? relative(REPO_ROOT, stateRoot) : stateRoot,
    fs: statfsSync(stateRoot).type === TMPFS_MAGIC ? "tmpfs" : "disk",
  };
}

export function machineInfo(): MachineInfo {
  const cpu = cpus();
  const state = stateOfStacks();
  return {
    cores: cpu.length,
    cpuModel: cpu[0]?.model.trim() ?? "?",
    memoryGiB: round(totalmem() / 1024 ** 3, 1),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    wrangler: packageVersion("wrangler"),
    workerd: packageVersion("workerd"),
    miniflare: packageVersion("miniflare"),
    loadAverageAtStart: loadavg().map((l) => round(l, 2)),
    stateDir: state.dir,
    stateFs: state.fs,
  };
}
