/**
 * Upload a library export to Kindling and watch it warm the cache.
 *
 *   npm run warm -- FILE [--url http://127.0.0.1:8787] [--token dev-token] [--max-depth 2] [--timeout 600]
 *
 * Progress goes to stderr (a bar on a terminal, a line every few seconds otherwise); the summary goes to
 * stdout. Exit codes: 0 the job completed (some failures allowed) and cached at least one work;
 * 1 nothing was cached, the upload was refused, the file is missing, the service is unreachable or the
 * job did not finish in time; 2 bad usage. Other scripts can `import { runWarm } from "./warm.ts"`.
 */
import { readFile, stat } from "node:fs/promises";
import { basename } from "node:path";
import { parseArgs } from "node:util";
import type { JobCreated, JobProgress, StateCounts } from "../src/api/job-responses.ts";
import { kindlingClient } from "./lib/api-client.ts";
import { FINISHED, pollJob } from "./lib/poll-job.ts";
import { errorMessage, isEntryPoint } from "./lib/processes.ts";

export const DEFAULT_URL = "http://127.0.0.1:8787";
export const DEFAULT_TOKEN = "dev-token";
export const DEFAULT_MAX_DEPTH = 2;
export const DEFAULT_TIMEOUT_SECONDS = 600;

export interface WarmOptions {
  /** Path of the CSV library export. */
  file: string;
  /** Base URL of the Kindling worker (default http://127.0.0.1:8787). */
  url?: string;
  /** API token (default dev-token, the one in .dev.vars.example). */
  token?: string;
  /** 0–3: how far to follow related authors (default 2). */
  maxDepth?: number;
  /** Give up watching after this many seconds (default 600). */
  timeoutSeconds?: number;
  /** Progress poll period (default 250 ms, i.e. ~4 updates a second). */
  pollIntervalMs?: number;
  /** "auto" (default): a bar when stderr is a terminal, periodic lines otherwise. */
  progress?: "auto" | "bar" | "lines" | "none";
  /** Seconds between progress lines when not drawing a bar (default 5). */
  lineIntervalSeconds?: number;
  /** Where the summary goes (default process.stdout). */
  stdout?: NodeJS.WritableStream;
  /** Where progress and errors go (default process.stderr). */
  stderr?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Stop watching (the job keeps running on the server). */
  signal?: AbortSignal;
}

export interface WarmSummary {
  file: string;
  url: string;
  jobId: string | null;
  /** Final job status (completed, completed_with_errors) or the last one seen. */
  status: string | null;
  rows: number | null;
  authorsQueued: number;
  duplicatesSkipped: number;
  counts: StateCounts | null;
  byDepth: (StateCounts & { depth: number })[];
  worksCached: number;
  /** The reader's own books: ISBN items that cached their edition, of all ISBN items (null before progress). */
  isbns: { warm: number; total: number } | null;
  elapsedSeconds: number;
  /** Set when the run did not succeed: an API error code or one of file_not_found, unreachable,
   *  timeout, nothing_cached, lost_contact, interrupted, bad_response. */
  error?: { code: string; message: string; httpStatus?: number; details?: unknown };
}

export interface WarmResult {
  exitCode: number;
  summary: WarmSummary;
}

const fmt = (n: number) => n.toLocaleString("en-US");

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s`;
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds % 60);
  if (m < 60) return `${m} min ${s} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

function unreachableMessage(url: string, error: unknown): string {
  let why = errorMessage(error);
  // fetch refuses "bad ports" (1, 7, 9, 21, 22, 25, …) before connecting: say so.
  if (why.includes("bad port")) why = `${why}: fetch never connects to port ${new URL(url).port}`;
  return `cannot reach Kindling at ${url} — is \`npm run dev:offline\` running? (${why})`;
}

function apiError(body: unknown): { code: string; message: string; details?: unknown } | null {
  if (typeof body !== "object" || body === null || !("error" in body)) return null;
  const error = (body as { error: unknown }).error;
  if (typeof error !== "object" || error === null) return null;
  const e = error as { code?: unknown; message?: unknown; details?: unknown };
  return {
    code: typeof e.code === "string" ? e.code : "unknown_error",
    message: typeof e.message === "string" ? e.message : JSON.stringify(error),
    ...(e.details === undefined ? {} : { details: e.details }),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Progress display
// ---------------------------------------------------------------------------------------------------------

const SPINNER = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

function etaText(p: JobProgress): string {
  if (p.etaSeconds === null) return "ETA ?";
  return `ETA ${p.etaSeconds < 60 ? `${Math.ceil(p.etaSeconds)} s` : formatDuration(p.etaSeconds)}`;
}

function describeCounts(p: JobProgress): string {
  const c = p.counts;
  const finished = c.done + c.skipped + c.failed + c.dead;
  return (
    `${fmt(finished)}/${fmt(c.total)} tasks · done ${fmt(c.done)} · skipped ${fmt(c.skipped)} · ` +
    `failed ${fmt(c.failed)} · dead ${fmt(c.dead)} · works ${fmt(p.worksCached)} · ${etaText(p)}`
  );
}

/** Shorter and shorter renderings of the counts, for narrow terminals. */
function countVariants(p: JobProgress, elapsedSeconds: number): string[] {
  const c = p.counts;
  const finished = c.done + c.skipped + c.failed + c.dead;
  const full = describeCounts(p);
  const compact =
    `${fmt(finished)}/${fmt(c.total)} · ok ${fmt(c.done)} skip ${fmt(c.skipped)} fail ${fmt(c.failed)} ` +
    `dead ${fmt(c.dead)} · ${fmt(p.worksCached)} works · ${etaText(p)}`;
  const minimal = `${fmt(finished)}/${fmt(c.total)} · ${fmt(p.worksCached)} works · ${etaText(p)}`;
  return [`${full} · ${formatDuration(elapsedSeconds)}`, full, compact, minimal];
}

/**
 * Progress on stderr. On a terminal a bar redrawn 4×/s (spinner and elapsed time move even while a
 * progress request is slow); otherwise one line every few seconds, so logs stay readable.
 */
class ProgressView {
  private frame = 0;
  private lastLineAt = 0;
  private drawn = false;
  private latest: JobProgress | null = null;
  private lastFinished = -1;
  private lastChangeAt = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private readonly out: NonNullable<WarmOptions["stderr"]>;
  private readonly mode: "bar" | "lines" | "none";
  private readonly lineIntervalMs: number;
  private readonly elapsed: () => number;

  constructor(
    out: NonNullable<WarmOptions["stderr"]>,
    mode: WarmOptions["progress"],
    lineSeconds: number,
    elapsed: () => number,
  ) {
    this.out = out;
    this.mode = mode === "auto" || mode === undefined ? (out.isTTY ? "bar" : "lines") : mode;
    this.lineIntervalMs = lineSeconds * 1000;
    this.elapsed = elapsed;
  }

  update(p: JobProgress, final = false): void {
    this.latest = p;
    const finished = p.counts.done + p.counts.skipped + p.counts.failed + p.counts.dead;
    if (finished !== this.lastFinished) {
      this.lastFinished = finished;
      this.lastChangeAt = Date.now();
    }
    if (this.mode === "none") return;
    if (this.mode === "lines") {
      const now = Date.now();
      if (!final && now - this.lastLineAt < this.lineIntervalMs) return;
      this.lastLineAt = now;
      const head = `[${formatDuration(this.elapsed()).padStart(6)}] ${p.status} ${p.percent.toFixed(1)}%`;
      this.out.write(`${head} — ${describeCounts(p)}${this.stalled()}\n`);
      return;
    }
    this.timer ??= setInterval(() => this.draw(false), 250);
    this.draw(final);
    if (final) this.stopTimer();
  }

  private draw(final: boolean): void {
    const p = this.latest;
    if (!p) return;
    const raw = this.out.columns;
    const columns = raw !== undefined && raw > 0 ? Math.max(40, raw) : 80;
    const spinner = final ? "✔" : (SPINNER[this.frame++ % SPINNER.length] ?? "*");
    const pct = `${p.percent.toFixed(1).padStart(5)}%`;
    const fixed = spinner.length + pct.length + 5; // spaces around the bar, right margin
    const variants = countVariants(p, this.elapsed()).map((v) => `${v}${this.stalled()}`);
    const tail = variants.find((v) => columns - fixed - v.length >= 10) ?? variants.at(-1) ?? "";
    const barWidth = Math.max(10, Math.min(30, columns - fixed - tail.length));
    const filled = Math.round((Math.min(100, Math.max(0, p.percent)) / 100) * barWidth);
    const bar = `${"█".repeat(filled)}${"░".repeat(barWidth - filled)}`;
    let line = `${spinner} ${bar} ${pct}  ${tail}`;
    if (line.length > columns - 1) line = `${line.slice(0, columns - 2)}…`;
    this.out.write(`\r\x1b[2K${line}`);
    this.drawn = true;
  }

  /** " · no progress for 1 min 5 s" once nothing has finished for 30 s (a stuck job is visible). */
  private stalled(): string {
    const quiet = (Date.now() - this.lastChangeAt) / 1000;
    return quiet >= 30 ? ` · no progress for ${formatDuration(quiet)}` : "";
  }

  private stopTimer(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Ends the bar's line so later output starts on a fresh one. */
  finish(): void {
    this.stopTimer();
    if (this.drawn) this.out.write("\n");
    this.drawn = false;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Summary
// ---------------------------------------------------------------------------------------------------------

export function formatSummary(s: WarmSummary): string {
  const lines: string[] = [];
  const row = (label: string, value: string) => lines.push(`  ${label.padEnd(22)} ${value}`);
  lines.push(`Kindling warm-up: ${s.file}${s.status ? ` — ${s.status}` : ""}`);
  const c = s.counts;
  if (c) {
    row("tasks done", fmt(c.done));
    row("skipped", fmt(c.skipped));
    row("failed", fmt(c.failed));
    row("dead", fmt(c.dead));
    const open = c.pending + c.queued + c.running;
    row("total tasks", `${fmt(c.total)}${open > 0 ? ` (${fmt(open)} still open)` : ""}`);
    for (const d of s.byDepth) {
      const parts = [`done ${fmt(d.done)}`];
      if (d.skipped) parts.push(`skipped ${fmt(d.skipped)}`);
      if (d.failed) parts.push(`failed ${fmt(d.failed)}`);
      if (d.dead) parts.push(`dead ${fmt(d.dead)}`);
      row(`  depth ${d.depth}`, `${fmt(d.total)} (${parts.join(", ")})`);
    }
  }
  if (s.rows !== null) {
    row("rows in file", `${fmt(s.rows)} (${fmt(s.duplicatesSkipped)} repeated author mentions merged)`);
  }
  row("works cached", fmt(s.worksCached));
  if (s.isbns) {
    const share = s.isbns.total > 0 ? ` (${((s.isbns.warm / s.isbns.total) * 100).toFixed(1)} %)` : "";
    row("your books", `${fmt(s.isbns.warm)} of ${fmt(s.isbns.total)} warm by ISBN${share}`);
  }
  row("elapsed", formatDuration(s.elapsedSeconds));
  row("job id", s.jobId ?? "(none)");
  return `${lines.join("\n")}\n`;
}

// ---------------------------------------------------------------------------------------------------------
// runWarm
// ---------------------------------------------------------------------------------------------------------

/** Uploads `options.file`, follows the job to the end and prints a summary. Never throws. */
export async function runWarm(options: WarmOptions): Promise<WarmResult> {
  let view: ProgressView | undefined;
  try {
    return await warm(options, (v) => {
      view = v;
    });
  } catch (error) {
    view?.finish();
    const message = `unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`;
    (options.stderr ?? process.stderr).write(`warm: ${message}\n`);
    return {
      exitCode: 1,
      summary: {
        file: options.file,
        url: options.url ?? DEFAULT_URL,
        jobId: null,
        status: null,
        rows: null,
        authorsQueued: 0,
        duplicatesSkipped: 0,
        counts: null,
        byDepth: [],
        worksCached: 0,
        isbns: null,
        elapsedSeconds: 0,
        error: { code: "internal_error", message },
      },
    };
  } finally {
    view?.finish();
  }
}

async function warm(options: WarmOptions, onView: (view: ProgressView) => void): Promise<WarmResult> {
  const url = (options.url ?? DEFAULT_URL).replace(/\/+$/, "");
  const token = options.token ?? DEFAULT_TOKEN;
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
  const timeoutSeconds = options.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS;
  const pollMs = options.pollIntervalMs ?? 250;
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  const signal = options.signal;
  const started = Date.now();
  const elapsed = () => (Date.now() - started) / 1000;
  const view = new ProgressView(stderr, options.progress, options.lineIntervalSeconds ?? 5, elapsed);
  onView(view);

  const summary: WarmSummary = {
    file: options.file,
    url,
    jobId: null,
    status: null,
    rows: null,
    authorsQueued: 0,
    duplicatesSkipped: 0,
    counts: null,
    byDepth: [],
    worksCached: 0,
    isbns: null,
    elapsedSeconds: 0,
  };
  const fail = (code: string, message: string, extra: { httpStatus?: number; details?: unknown } = {}) => {
    view.finish();
    summary.elapsedSeconds = elapsed();
    summary.error = { code, message, ...extra };
    stderr.write(`warm: ${message}\n`);
    if (extra.details !== undefined) stderr.write(`  details: ${JSON.stringify(extra.details)}\n`);
    return { exitCode: 1, summary };
  };

  // 1. The file.
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    const info = await stat(options.file);
    if (!info.isFile()) return fail("file_not_found", `${options.file} is not a file`);
    bytes = new Uint8Array(await readFile(options.file));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return fail("file_not_found", `file not found: ${options.file}`);
    return fail("file_not_found", `cannot read ${options.file}: ${errorMessage(error)}`);
  }

  // 2. The upload (typed by the OpenAPI document: scripts/lib/api-client.ts).
  const client = kindlingClient(url, token);
  let created: JobCreated;
  try {
    const { data, error, response } = await client.POST("/api/jobs", {
      params: { query: { maxDepth: String(maxDepth), filename: basename(options.file) } },
      headers: { "Content-Type": "text/csv" },
      // The file's bytes as they are: the API decides their encoding.
      body: new Blob([bytes]),
      bodySerializer: (blob) => blob,
      signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(120_000)]) : AbortSignal.timeout(120_000),
    });
    if (!data) {
      // openapi-fetch keeps a refusal's body as JSON, or as its text when it is not JSON.
      const body: unknown = error;
      const refused = apiError(body);
      if (refused) {
        return fail(
          refused.code,
          `upload refused (HTTP ${response.status} ${refused.code}): ${refused.message}`,
          {
            httpStatus: response.status,
            ...(refused.details === undefined ? {} : { details: refused.details }),
          },
        );
      }
      const shown = typeof body === "string" ? body.slice(0, 300) : JSON.stringify(body);
      return fail("bad_response", `upload refused (HTTP ${response.status}) by ${url}: ${shown}`, {
        httpStatus: response.status,
      });
    }
    // Typed is not checked: a proxy in the way could still answer something else with a 2xx.
    if (typeof data.jobId !== "string" || typeof data.links?.progress !== "string") {
      return fail("bad_response", `unexpected answer from ${url}/api/jobs: ${JSON.stringify(data)}`);
    }
    created = data;
  } catch (error) {
    if (signal?.aborted) return fail("interrupted", "interrupted before the upload finished");
    if (error instanceof Error && error.name === "TimeoutError") {
      return fail("timeout", `Kindling at ${url} did not answer the upload within 120 s`);
    }
    if (error instanceof SyntaxError) {
      return fail("bad_response", `the upload's answer from ${url}/api/jobs is not JSON: ${error.message}`);
    }
    return fail("unreachable", unreachableMessage(url, error));
  }

  summary.jobId = created.jobId;
  summary.status = created.status;
  summary.rows = created.rows ?? null;
  summary.authorsQueued = created.authorsQueued + (created.authorsPending ?? 0);
  summary.duplicatesSkipped = created.duplicatesSkipped;
  const estimate = created.estimatedDuration
    ? `; estimate ~${fmt(created.estimatedWorks ?? 0)} works, ${created.estimatedDuration.text}`
    : "";
  stderr.write(
    `Uploaded ${basename(options.file)}: ${fmt(summary.authorsQueued)} authors queued ` +
      `(${fmt(created.duplicatesSkipped)} repeated mentions merged), maxDepth ${maxDepth}${estimate}\n` +
      `Job ${created.jobId} — ${url}${created.links.progress}\n`,
  );

  // 3. Follow the job.
  const progressUrl = new URL(created.links.progress, `${url}/`).toString();
  const deadline = started + timeoutSeconds * 1000;
  let lastGood = Date.now();
  let lastProblem = "";
  // Set by the callbacks (TypeScript does not follow assignments made inside them: hence the casts).
  let progress = null as JobProgress | null;
  let stopped = null as WarmResult | null;
  const finished = await pollJob(url, token, created.jobId, {
    path: created.links.progress,
    intervalMs: pollMs,
    deadline,
    requestTimeoutMs: 10_000,
    ...(signal ? { signal } : {}),
    onProgress: (p) => {
      progress = p;
      lastGood = Date.now();
      summary.status = p.status;
      summary.counts = p.counts;
      summary.byDepth = p.byDepth;
      summary.worksCached = p.worksCached;
      if (p.byKind) summary.isbns = { warm: p.byKind.isbn.warm, total: p.byKind.isbn.total };
      view.update(p, FINISHED.has(p.status));
    },
    onFailure: (failure) => {
      const error = apiError(failure.body);
      lastProblem =
        failure.status === undefined
          ? failure.message
          : `HTTP ${failure.status}${error ? ` ${error.code}: ${error.message}` : ""}`;
      // A job that does not exist will not appear later: stop at once.
      if (failure.status === 404) {
        stopped = fail(error?.code ?? "not_found", `job ${created.jobId} not found at ${progressUrl}`, {
          httpStatus: 404,
        });
        return "stop";
      }
      if (Date.now() - lastGood > 30_000) {
        stopped = fail(
          "lost_contact",
          `lost contact with Kindling at ${url} for 30 s (${lastProblem}); job ${created.jobId} may still be running`,
        );
        return "stop";
      }
      return "retry";
    },
  });
  if (stopped) return stopped;
  if (signal?.aborted) {
    return fail(
      "interrupted",
      `stopped watching; job ${created.jobId} keeps running on the server: GET ${progressUrl}`,
    );
  }
  if (!finished) {
    const state = progress
      ? `${progress.status}, ${progress.percent.toFixed(1)}% finished`
      : "no progress seen";
    return fail(
      "timeout",
      `job ${created.jobId} did not finish within ${timeoutSeconds} s (${state}); ` +
        `it keeps running — follow it with GET ${progressUrl} or raise --timeout`,
    );
  }
  view.finish();
  summary.elapsedSeconds = elapsed();

  stdout.write(formatSummary(summary));
  const problems = (summary.counts?.failed ?? 0) + (summary.counts?.dead ?? 0);
  if (problems > 0) {
    stderr.write(
      `${fmt(problems)} authors failed — details: GET ${url}/api/jobs/${created.jobId}/failures\n`,
    );
  }
  if (summary.worksCached === 0) {
    summary.error = {
      code: "nothing_cached",
      message: `job ${created.jobId} finished (${summary.status}) but cached no works`,
    };
    stderr.write(`warm: ${summary.error.message}\n`);
    return { exitCode: 1, summary };
  }
  return { exitCode: 0, summary };
}

// ---------------------------------------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------------------------------------

const USAGE = `usage: npm run warm -- FILE [options]
  FILE                 a CSV library export (Goodreads, StoryGraph, …)
  --url URL            Kindling base URL (default ${DEFAULT_URL}; env KINDLING_URL)
  --token TOKEN        API token (default ${DEFAULT_TOKEN}; env KINDLING_TOKEN)
  --max-depth N        0–3: how far to follow related authors (default ${DEFAULT_MAX_DEPTH})
  --timeout SECONDS    stop watching after this long (default ${DEFAULT_TIMEOUT_SECONDS})
  --quiet              no progress display, only the summary
  -h, --help           this help
Exit codes: 0 job completed and works were cached · 1 nothing cached, upload refused, file missing,
service unreachable or timed out · 2 bad usage.`;

function usageError(message: string): never {
  process.stderr.write(`warm: ${message}\n\n${USAGE}\n`);
  process.exit(2);
}

function integerFlag(name: string, raw: string | undefined, min: number, max: number): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isInteger(n) || n < min || n > max) {
    usageError(`--${name} must be a whole number from ${min} to ${max}, got "${raw}"`);
  }
  return n;
}

function parseCli() {
  try {
    return parseArgs({
      allowPositionals: true,
      options: {
        url: { type: "string" },
        token: { type: "string" },
        "max-depth": { type: "string" },
        timeout: { type: "string" },
        quiet: { type: "boolean", short: "q" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (error) {
    usageError(errorMessage(error));
  }
}

async function main(): Promise<void> {
  const { values, positionals } = parseCli();
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (positionals.length !== 1 || positionals[0] === undefined) {
    usageError(positionals.length === 0 ? "missing FILE" : `expected one FILE, got ${positionals.length}`);
  }
  const url = values.url ?? process.env.KINDLING_URL ?? DEFAULT_URL;
  try {
    const u = new URL(url);
    if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error("not http");
  } catch {
    usageError(`--url must be an http(s) URL, got "${url}"`);
  }

  const controller = new AbortController();
  let interrupted = false;
  process.on("SIGINT", () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    controller.abort();
  });

  const result = await runWarm({
    file: positionals[0],
    url,
    token: values.token ?? process.env.KINDLING_TOKEN ?? DEFAULT_TOKEN,
    maxDepth: integerFlag("max-depth", values["max-depth"], 0, 3),
    timeoutSeconds: integerFlag("timeout", values.timeout, 1, 7 * 24 * 3600),
    progress: values.quiet ? "none" : "auto",
    signal: controller.signal,
  });
  process.exitCode = interrupted ? 130 : result.exitCode;
}

if (isEntryPoint(import.meta.url)) {
  main().catch((error: unknown) => {
    process.stderr.write(
      `warm: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  });
}
