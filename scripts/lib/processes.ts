/**
 * Small process helpers for the local scripts (dev:offline, demo, bench, chaos):
 *
 * - `spawnManaged()` starts a child in its own process group (`detached: true`), writes everything it
 *   prints to a log file (ANSI colours stripped), and shows it in the terminal, prefixed, only when asked
 *   (`verbose`) or when a line matches `highlight` (errors). `stop()` kills the whole group (`kill -pid`),
 *   so grandchildren such as workerd go too.
 * - `onCleanup()` registers teardown work that runs, last registered first, on normal exit, SIGINT,
 *   SIGTERM, SIGHUP, an uncaught exception or an unhandled rejection: nothing is left running.
 * - `waitForHttp()` polls a URL until it answers; `findFreePort()` / `assertPortFree()` pick ports.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, mkdirSync, realpathSync, type WriteStream } from "node:fs";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (scripts/lib/ → ../..). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
/** Where the scripts write child-process logs (gitignored with the rest of .wrangler/). */
export const LOG_DIR = join(REPO_ROOT, ".wrangler", "logs");

// ---------------------------------------------------------------------------------------------------------
// Cleanup registry
// ---------------------------------------------------------------------------------------------------------

type CleanupFn = () => void | Promise<void>;

interface CleanupEntry {
  name: string;
  run: CleanupFn;
  /** Synchronous last resort for the process 'exit' event, where nothing async can run. */
  runSync?: () => void;
}

const cleanups: CleanupEntry[] = [];
let handlersInstalled = false;
let shuttingDown: Promise<void> | undefined;

export interface CleanupHandle {
  /** Runs the entry now (once) and unregisters it. */
  run(): Promise<void>;
  /** Unregisters the entry without running it (the work was done another way). */
  cancel(): void;
}

/**
 * Registers teardown work. Entries run in reverse order of registration (like `defer`), each at most once.
 */
export function onCleanup(name: string, run: CleanupFn, runSync?: () => void): CleanupHandle {
  installSignalHandlers();
  const entry: CleanupEntry = { name, run, ...(runSync ? { runSync } : {}) };
  cleanups.push(entry);
  const cancel = () => {
    const index = cleanups.indexOf(entry);
    if (index >= 0) cleanups.splice(index, 1);
  };
  let done: Promise<void> | undefined;
  return {
    cancel,
    run: () => {
      done ??= (async () => {
        cancel();
        await entry.run();
      })();
      return done;
    },
  };
}

/** Runs every registered cleanup (LIFO). Errors are reported but do not stop the others. */
export function runCleanups(): Promise<void> {
  shuttingDown ??= (async () => {
    while (cleanups.length > 0) {
      const entry = cleanups.pop();
      if (!entry) break;
      try {
        await entry.run();
      } catch (error) {
        process.stderr.write(`cleanup "${entry.name}" failed: ${errorMessage(error)}\n`);
      }
    }
  })();
  return shuttingDown;
}

/** Whether the cleanups have started (Ctrl-C, an error or shutdownAndExit). */
export function isShuttingDown(): boolean {
  return shuttingDown !== undefined;
}

/** Runs the cleanups, then exits with `code`. Safe to call more than once. */
export async function shutdownAndExit(code: number): Promise<never> {
  await runCleanups();
  process.exit(code);
}

function installSignalHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  const signals: [NodeJS.Signals, number][] = [
    ["SIGINT", 130],
    ["SIGTERM", 143],
    ["SIGHUP", 129],
  ];
  for (const [signal, code] of signals) {
    process.on(signal, () => {
      if (shuttingDown) {
        // Second Ctrl-C while stopping: stop waiting politely.
        killAllSync();
        process.exit(code);
      }
      process.stderr.write(`\n${signal === "SIGINT" ? "Ctrl-C" : signal}: stopping…\n`);
      void shutdownAndExit(code);
    });
  }
  process.on("uncaughtException", (error) => {
    process.stderr.write(`\nunexpected error: ${error.stack ?? error.message}\n`);
    void shutdownAndExit(1);
  });
  process.on("unhandledRejection", (reason) => {
    process.stderr.write(`\nunexpected error: ${reason instanceof Error ? reason.stack : String(reason)}\n`);
    void shutdownAndExit(1);
  });
  // Last resort: if the process exits without running the cleanups (process.exit() elsewhere), kill the
  // process groups synchronously. Nothing async can run here.
  process.on("exit", killAllSync);
  // `kill <npm pid>` kills npm but not this script (npm runs it through `sh -c`, which does not pass the
  // signal on): notice that the parent went away and stop everything rather than live on as an orphan.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid === parent || shuttingDown) return;
    try {
      process.stderr.write("\nparent process went away: stopping…\n");
    } catch {
      // the terminal may be gone too
    }
    void shutdownAndExit(129);
  }, 1000).unref();
}

function killAllSync(): void {
  for (const entry of [...cleanups].reverse()) {
    try {
      entry.runSync?.();
    } catch {
      // best effort
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Managed child processes
// ---------------------------------------------------------------------------------------------------------

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching ANSI escape sequences is the point
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07/g;

export function stripAnsi(text: string): string {
  return text.replace(ANSI, "");
}

export interface SpawnOptions {
  /** Short label used as the output prefix, e.g. "wrangler". */
  name: string;
  command: string;
  args: readonly string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Log file for the child's stdout+stderr; default `.wrangler/logs/<name>-<timestamp>.log`. */
  logFile?: string;
  /** Show every output line in the terminal (prefixed). Default false: the log file only. */
  verbose?: boolean;
  /** Lines shown in the terminal even when not verbose (e.g. errors). */
  highlight?: (line: string) => boolean;
  /** Called for every output line (ANSI stripped), e.g. to watch for a "ready" message. */
  onLine?: (line: string, stream: "stdout" | "stderr") => void;
  /** Where terminal output goes (default process.stderr, keeping stdout for results). */
  terminal?: NodeJS.WritableStream;
  /** Keep the last N lines in memory for error reports (default 200). */
  tailLines?: number;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ManagedProcess {
  name: string;
  pid: number;
  child: ChildProcess;
  logFile: string;
  /** Resolves when the child (the group leader) has exited. */
  exited: Promise<ExitInfo>;
  /** Whether the leader has exited. */
  hasExited(): boolean;
  /** The last lines of output (ANSI stripped). */
  tail(lines?: number): string[];
  /** SIGTERM the process group, SIGKILL it after `graceMs`; resolves when the group is gone. */
  stop(graceMs?: number): Promise<void>;
}

export function timestampForFile(date = new Date()): string {
  return date.toISOString().replace(/[:.]/g, "-").replace("T", "_").replace("Z", "");
}

/** Sends `signal` to the whole process group led by `pid`; false when nothing was there. */
export function killGroup(pid: number, signal: NodeJS.Signals | 0 = "SIGTERM"): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false;
  }
}

function groupAlive(pid: number): boolean {
  return killGroup(pid, 0);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Starts a child in its own process group, logging to a file; it is stopped by the cleanup handlers. */
export function spawnManaged(opts: SpawnOptions): ManagedProcess {
  const logFile = opts.logFile ?? join(LOG_DIR, `${opts.name}-${timestampForFile()}.log`);
  mkdirSync(dirname(logFile), { recursive: true });
  const log: WriteStream = createWriteStream(logFile, { flags: "a" });
  log.write(`# ${new Date().toISOString()} ${opts.command} ${opts.args.join(" ")}\n`);

  const child = spawn(opts.command, [...opts.args], {
    cwd: opts.cwd ?? REPO_ROOT,
    env: opts.env ?? process.env,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  const pid = child.pid;
  if (pid === undefined) {
    log.end();
    throw new Error(`could not start ${opts.name} (${opts.command})`);
  }

  const terminal = opts.terminal ?? process.stderr;
  const tailSize = opts.tailLines ?? 200;
  const recent: string[] = [];
  const prefix = `[${opts.name}] `;

  const attach = (stream: NodeJS.ReadableStream | null, which: "stdout" | "stderr") => {
    if (!stream) return;
    let buffered = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      buffered += chunk;
      const lines = buffered.split(/\r?\n/);
      buffered = lines.pop() ?? "";
      for (const raw of lines) handleLine(raw, which);
    });
    stream.on("end", () => {
      if (buffered !== "") handleLine(buffered, which);
      buffered = "";
    });
  };
  const handleLine = (raw: string, which: "stdout" | "stderr") => {
    const line = stripAnsi(raw);
    log.write(`${line}\n`);
    recent.push(line);
    if (recent.length > tailSize) recent.shift();
    if (opts.verbose || opts.highlight?.(line)) terminal.write(`${prefix}${line}\n`);
    opts.onLine?.(line, which);
  };
  attach(child.stdout, "stdout");
  attach(child.stderr, "stderr");

  let exitInfo: ExitInfo | undefined;
  const exited = new Promise<ExitInfo>((resolveExit) => {
    child.once("error", (error) => {
      log.write(`# spawn error: ${error.message}\n`);
      exitInfo ??= { code: null, signal: null };
      resolveExit(exitInfo);
    });
    child.once("exit", (code, signal) => {
      log.write(`# exited: code=${code} signal=${signal}\n`);
      exitInfo ??= { code, signal };
      resolveExit(exitInfo);
    });
  });

  let stopping: Promise<void> | undefined;
  let cleanup: CleanupHandle | undefined;
  const stop = (graceMs = 5000): Promise<void> => {
    stopping ??= (async () => {
      if (groupAlive(pid)) {
        killGroup(pid, "SIGTERM");
        const deadline = Date.now() + graceMs;
        // The leader may exit first and leave children (workerd) behind: wait for the whole group.
        while (groupAlive(pid) && Date.now() < deadline) await sleep(50);
        if (groupAlive(pid)) {
          killGroup(pid, "SIGKILL");
          const hardDeadline = Date.now() + 2000;
          while (groupAlive(pid) && Date.now() < hardDeadline) await sleep(50);
        }
      }
      await Promise.race([exited, sleep(1000)]);
      await new Promise<void>((r) => log.end(r));
      cleanup?.cancel();
    })();
    return stopping;
  };

  // Runs on Ctrl-C / errors / exit (stop() is idempotent).
  cleanup = onCleanup(
    `stop ${opts.name}`,
    () => stop(),
    () => killGroup(pid, "SIGKILL"),
  );

  return {
    name: opts.name,
    pid,
    child,
    logFile,
    exited,
    hasExited: () => exitInfo !== undefined,
    tail: (lines = 40) => recent.slice(-lines),
    stop,
  };
}

/** Runs a command to completion (managed: killed on Ctrl-C); rejects with the output tail on failure. */
export async function runToCompletion(opts: SpawnOptions & { timeoutMs?: number }): Promise<ManagedProcess> {
  const proc = spawnManaged(opts);
  const timeoutMs = opts.timeoutMs ?? 120_000;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<"timeout">((r) => {
    timer = setTimeout(() => r("timeout"), timeoutMs);
  });
  const result = await Promise.race([proc.exited, timedOut]);
  clearTimeout(timer);
  if (result === "timeout") {
    await proc.stop();
    throw new ProcessError(`${opts.name} did not finish within ${Math.round(timeoutMs / 1000)} s`, proc);
  }
  await proc.stop(); // closes the log; the group is normally gone already
  if (result.code !== 0) {
    throw new ProcessError(
      `${opts.name} failed (${result.signal ? `signal ${result.signal}` : `exit code ${result.code}`})`,
      proc,
    );
  }
  return proc;
}

/** A child process failed; `details()` includes the last lines it printed and where its log is. */
export class ProcessError extends Error {
  readonly process: ManagedProcess;
  constructor(message: string, proc: ManagedProcess) {
    super(message);
    this.name = "ProcessError";
    this.process = proc;
  }
  details(lines = 15): string {
    const tail = this.process
      .tail(lines)
      .filter((l) => l.trim() !== "")
      .map((l) => `    ${l}`)
      .join("\n");
    return `${this.message}\n  last output:\n${tail || "    (none)"}\n  full log: ${this.process.logFile}`;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Ports and readiness
// ---------------------------------------------------------------------------------------------------------

/** Asks the OS for a free TCP port on `host` (there is a small race until the caller binds it). */
export function findFreePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => (port > 0 ? resolvePort(port) : reject(new Error("no free port found"))));
    });
  });
}

/** Whether `port` on `host` can be bound right now. */
export function isPortFree(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolveFree) => {
    const server = createServer();
    server.unref();
    server.once("error", () => resolveFree(false));
    server.listen(port, host, () => server.close(() => resolveFree(true)));
  });
}

export async function assertPortFree(port: number, what: string, flag: string, host = "127.0.0.1") {
  if (!(await isPortFree(port, host))) {
    throw new Error(
      `port ${port} (${what}) on ${host} is already in use — is another dev server running? ` +
        `Stop it or choose another port with ${flag}.`,
    );
  }
}

export interface WaitForHttpOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** Which answers count as ready (default: any HTTP answer below 500). */
  ready?: (response: Response) => boolean;
  /** Give up early when this settles (e.g. the server process exited). */
  abortOn?: Promise<unknown>;
  /** Describes what we wait for, in error messages. */
  what?: string;
}

/** Polls `url` until it answers as `ready`; rejects after `timeoutMs` or when `abortOn` settles. */
export async function waitForHttp(url: string, opts: WaitForHttpOptions = {}): Promise<Response> {
  const { timeoutMs = 60_000, intervalMs = 250, ready = (r) => r.status < 500, what = url } = opts;
  const deadline = Date.now() + timeoutMs;
  let aborted: string | undefined;
  void opts.abortOn?.then(
    () => {
      aborted = "exited";
    },
    () => {
      aborted = "failed";
    },
  );
  let last = "no answer yet";
  while (Date.now() < deadline) {
    if (aborted) throw new Error(`${what}: the server ${aborted} before it answered (${last})`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(Math.max(1000, intervalMs * 8)) });
      if (ready(response)) return response;
      last = `HTTP ${response.status}`;
      await response.body?.cancel();
    } catch (error) {
      last = errorMessage(error);
    }
    await sleep(intervalMs);
  }
  throw new Error(`${what} did not answer within ${Math.round(timeoutMs / 1000)} s (last: ${last})`);
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as Error & { cause?: unknown }).cause;
    if (cause instanceof Error && cause.message && !error.message.includes(cause.message)) {
      const code = (cause as Error & { code?: string }).code;
      return `${error.message} (${code ?? cause.message})`;
    }
    return error.message;
  }
  return String(error);
}

/** `true` when the module at `metaUrl` is the script node was started with. */
export function isEntryPoint(metaUrl: string): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(fileURLToPath(metaUrl)) === realpathSync(entry);
  } catch {
    return false;
  }
}
