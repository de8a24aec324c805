/**
 * Run Kindling locally with no internet: the fake book APIs stand in for Open Library and Google Books.
 *
 *   npm run dev:offline [-- --port 8787 --upstream-port 8790 --persist-to .wrangler/state --verbose
 *                          --ol-rate 50 --gb-rate 50 --latency-ms 0 --error-rate 0 ...]
 *
 * 1. copies .dev.vars.example to .dev.vars when it is missing (API_TOKEN=dev-token);
 * 2. starts the fake upstream (in this process) on 127.0.0.1:8790;
 * 3. applies the D1 migrations to the persisted local state (.wrangler/state);
 * 4. starts `wrangler dev --local` on http://127.0.0.1:8787 with the book-API base URLs pointed at the
 *    stand-in and generous rate limits, and runs the cron sweep every 30 s (local dev never fires crons);
 * 5. runs until Ctrl-C, then stops everything it started.
 *
 * Wrangler's output goes to .wrangler/logs/ (shown here with --verbose). Other scripts reuse the stack:
 * `import { startOfflineStack } from "./dev-offline.ts"`.
 */
import { copyFileSync, existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { FakeUpstreamOptions } from "../test/support/upstream/handler.ts";
import {
  FAULT_FLAGS,
  type RunningFakeUpstream,
  startFakeUpstream,
  stringFlags,
} from "../test/support/upstream/server.ts";
import {
  assertPortFree,
  errorMessage,
  findFreePort,
  isEntryPoint,
  isShuttingDown,
  LOG_DIR,
  type ManagedProcess,
  onCleanup,
  ProcessError,
  REPO_ROOT,
  runToCompletion,
  shutdownAndExit,
  spawnManaged,
  timestampForFile,
  waitForHttp,
} from "./lib/processes.ts";

/** The instrumented worker (counters, naive modes, chaos hooks) that bench and chaos run; see ARCHITECTURE.md. */
export const INSTRUMENTED_ENTRY = "test/support/instrumented/entry.ts";

export const DEFAULT_PORT = 8787;
export const DEFAULT_UPSTREAM_PORT = 8790;
export const DEFAULT_PERSIST_TO = ".wrangler/state";
export const DEFAULT_OL_RATE = 50;
export const DEFAULT_GB_RATE = 50;
export const DEFAULT_RETRY_BASE_SECONDS = 1;
export const DEFAULT_SWEEP_EVERY_SECONDS = 30;
const HOST = "127.0.0.1";
const FALLBACK_TOKEN = "dev-token";

export interface OfflineStackOptions {
  /** Worker port (default 8787; 0 = any free port). */
  port?: number;
  /** Fake upstream port (default 8790; 0 = any free port). */
  upstreamPort?: number;
  /** DevTools inspector port (default: any free port). */
  inspectorPort?: number;
  /** Local state directory for D1/KV/queues (default .wrangler/state), relative to the repository. */
  persistTo?: string;
  /** Show wrangler's output in the terminal (it always goes to the log file). */
  verbose?: boolean;
  /** OPENLIBRARY_RATE_PER_SECOND for the worker (default 50: the stand-in needs no politeness). */
  olRate?: number;
  /** GOOGLE_BOOKS_RATE_PER_SECOND for the worker (default 50). */
  gbRate?: number;
  /** RETRY_BASE_SECONDS for the worker (default 1, so retries against the stand-in are quick). */
  retryBaseSeconds?: number;
  /** Trigger the worker's cron sweep this often (default 30 s; 0 = never). */
  sweepEverySeconds?: number;
  /** Fault knobs for the stand-in (latencyMs, statusRates, rate429, hangRate, ...). */
  upstream?: FakeUpstreamOptions;
  /** More worker vars, passed as `--var KEY:VALUE` (win over the ones above). */
  vars?: Record<string, string>;
  /** Worker entry point instead of wrangler.toml's `main`. */
  script?: string;
  /** Log file name prefix under .wrangler/logs/ (default "dev-offline"). */
  logName?: string;
  /** How long to wait for the worker to answer (default 90 s). */
  readyTimeoutMs?: number;
  /** Progress messages (default: written to stderr). */
  log?: (message: string) => void;
}

export interface OfflineStack {
  /** Worker base URL, e.g. http://127.0.0.1:8787. */
  url: string;
  /** Fake upstream base URL, e.g. http://127.0.0.1:8790. */
  upstreamUrl: string;
  /** The API token the worker expects (from .dev.vars). */
  token: string;
  inspectorPort: number;
  /** Absolute path of the local state directory. */
  persistTo: string;
  /** wrangler dev's log file. */
  logFile: string;
  upstream: RunningFakeUpstream;
  wrangler: ManagedProcess;
  /** Resolves if wrangler exits on its own (it should not while the stack runs). */
  exited: Promise<void>;
  /** Stops the sweep timer, wrangler (its whole process group) and the stand-in. Idempotent. */
  stop(): Promise<void>;
}

/** Node 22 (this process) runs wrangler's JS entry directly: no dependency on `node` in PATH. */
function wranglerCommand(): { command: string; args: string[] } {
  const require = createRequire(import.meta.url);
  const pkgPath = require.resolve("wrangler/package.json");
  return { command: process.execPath, args: [join(pkgPath, "..", "bin", "wrangler.js")] };
}

function wranglerEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    WRANGLER_SEND_METRICS: "false",
    CLOUDFLARE_CF_FETCH_ENABLED: "false",
    // Wrangler's own debug log goes next to ours instead of ~/.config/.wrangler/logs.
    WRANGLER_LOG_PATH: LOG_DIR,
    FORCE_COLOR: "0",
  };
}

/** Copies .dev.vars.example to .dev.vars when missing; returns the API token .dev.vars sets. */
export function ensureDevVars(log: (m: string) => void = () => {}): string {
  const devVars = join(REPO_ROOT, ".dev.vars");
  if (!existsSync(devVars)) {
    copyFileSync(join(REPO_ROOT, ".dev.vars.example"), devVars);
    log("created .dev.vars from .dev.vars.example");
  }
  const match = /^\s*API_TOKEN\s*=\s*"?([^"\r\n]*?)"?\s*$/m.exec(readFileSync(devVars, "utf8"));
  return match?.[1] || FALLBACK_TOKEN;
}

const isError = (line: string) => /✘|\[ERROR\]|Uncaught /.test(line);

/** Starts stand-in + migrations + wrangler dev and waits until the worker answers. */
export async function startOfflineStack(opts: OfflineStackOptions = {}): Promise<OfflineStack> {
  const log = opts.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  const persistTo = resolve(REPO_ROOT, opts.persistTo ?? DEFAULT_PERSIST_TO);
  const logName = opts.logName ?? "dev-offline";
  const stamp = timestampForFile();
  const wrangler = wranglerCommand();
  const env = wranglerEnv();

  const token = ensureDevVars(log);

  // Ports: check the fixed ones up front so the error says which flag to change.
  let port = opts.port ?? DEFAULT_PORT;
  if (port === 0) port = await findFreePort(HOST);
  else await assertPortFree(port, "worker", "--port", HOST);
  const upstreamPort = opts.upstreamPort ?? DEFAULT_UPSTREAM_PORT;
  if (upstreamPort !== 0) await assertPortFree(upstreamPort, "fake upstream", "--upstream-port", HOST);
  const inspectorPort = opts.inspectorPort ?? (await findFreePort(HOST));

  const upstream = await startFakeUpstream({ ...opts.upstream, port: upstreamPort, host: HOST });
  const closeUpstream = onCleanup("close fake upstream", () => upstream.close());
  log(`fake upstream listening on ${upstream.url}`);

  try {
    log(`applying D1 migrations to ${relative(REPO_ROOT, persistTo) || "."} …`);
    await runToCompletion({
      name: "migrations",
      command: wrangler.command,
      args: [...wrangler.args, "d1", "migrations", "apply", "DB", "--local", "--persist-to", persistTo],
      // stdin is closed, so wrangler skips the confirmation prompt; CI=true makes that explicit.
      env: { ...env, CI: "true" },
      logFile: join(LOG_DIR, `${logName}-${stamp}-migrations.log`),
      verbose: opts.verbose ?? false,
      highlight: isError,
      timeoutMs: 120_000,
    });
  } catch (error) {
    await closeUpstream.run();
    throw error;
  }

  const vars: Record<string, string> = {
    ENVIRONMENT: "development",
    API_TOKEN: token,
    OPENLIBRARY_BASE_URL: upstream.url,
    GOOGLE_BOOKS_BASE_URL: upstream.url,
    OPENLIBRARY_RATE_PER_SECOND: String(opts.olRate ?? DEFAULT_OL_RATE),
    GOOGLE_BOOKS_RATE_PER_SECOND: String(opts.gbRate ?? DEFAULT_GB_RATE),
    RETRY_BASE_SECONDS: String(opts.retryBaseSeconds ?? DEFAULT_RETRY_BASE_SECONDS),
    ...opts.vars,
  };
  const args = [
    ...wrangler.args,
    "dev",
    ...(opts.script ? [opts.script] : []),
    "--local",
    "--persist-to",
    persistTo,
    "--ip",
    HOST,
    "--port",
    String(port),
    "--inspector-port",
    String(inspectorPort),
    "--show-interactive-dev-session=false",
    ...Object.entries(vars).flatMap(([k, v]) => ["--var", `${k}:${v}`]),
  ];
  const url = `http://${HOST}:${port}`;
  log(`starting wrangler dev on ${url} …`);
  const dev = spawnManaged({
    name: "wrangler",
    command: wrangler.command,
    args,
    env,
    logFile: join(LOG_DIR, `${logName}-${stamp}-wrangler.log`),
    verbose: opts.verbose ?? false,
    highlight: isError,
  });

  let sweepTimer: NodeJS.Timeout | undefined;
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      clearInterval(sweepTimer);
      await dev.stop();
      await closeUpstream.run();
    })();
    return stopping;
  };
  const stopHandle = onCleanup("stop offline stack", stop);

  try {
    const health = await waitForHttp(`${url}/health`, {
      timeoutMs: opts.readyTimeoutMs ?? 90_000,
      // 503 means "up but degraded": the worker answers, report what it says below.
      ready: (r) => r.status === 200 || r.status === 503,
      abortOn: dev.exited,
      what: `wrangler dev (${url})`,
    });
    if (health.status !== 200) {
      log(`warning: ${url}/health answers ${health.status}: ${await health.text()}`);
    } else {
      await health.body?.cancel();
    }
  } catch (error) {
    await stopHandle.run();
    if (dev.hasExited()) {
      const firstError = dev
        .tail(200)
        .find(isError)
        ?.replace(/^\s*✘\s*\[ERROR\]\s*/, "");
      throw new ProcessError(
        `wrangler dev exited before ${url} answered${firstError ? `: ${firstError}` : ""}`,
        dev,
      );
    }
    throw new ProcessError(errorMessage(error), dev);
  }

  const sweepEvery = opts.sweepEverySeconds ?? DEFAULT_SWEEP_EVERY_SECONDS;
  if (sweepEvery > 0) {
    // Local dev never fires cron triggers; the sweep re-sends lost messages and finalises jobs.
    const cron = encodeURIComponent("*/5 * * * *");
    sweepTimer = setInterval(() => {
      fetch(`${url}/cdn-cgi/local/scheduled?cron=${cron}`, { signal: AbortSignal.timeout(30_000) }).then(
        (r) => r.body?.cancel(),
        () => {},
      );
    }, sweepEvery * 1000);
    sweepTimer.unref();
  }

  return {
    url,
    upstreamUrl: upstream.url,
    token,
    inspectorPort,
    persistTo,
    logFile: dev.logFile,
    upstream,
    wrangler: dev,
    exited: dev.exited.then(() => {}),
    stop: () => stopHandle.run(),
  };
}

// ---------------------------------------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------------------------------------

const USAGE = `usage: npm run dev:offline [-- options]
  --port N               worker port (default ${DEFAULT_PORT}; 0 = any free port)
  --upstream-port N      fake book-API port (default ${DEFAULT_UPSTREAM_PORT}; 0 = any free port)
  --inspector-port N     DevTools port (default: any free port)
  --persist-to DIR       local D1/KV/queue state (default ${DEFAULT_PERSIST_TO})
  --ol-rate N            OPENLIBRARY_RATE_PER_SECOND (default ${DEFAULT_OL_RATE}; production uses 3)
  --gb-rate N            GOOGLE_BOOKS_RATE_PER_SECOND (default ${DEFAULT_GB_RATE}; production uses 5)
  --retry-base-seconds N RETRY_BASE_SECONDS (default ${DEFAULT_RETRY_BASE_SECONDS})
  --sweep-every N        run the cron sweep every N seconds (default ${DEFAULT_SWEEP_EVERY_SECONDS}; 0 = never)
  --var KEY:VALUE        any other worker var (repeatable)
  --verbose              show wrangler's output here (it always goes to .wrangler/logs/)
 Fault knobs for the stand-in (also changeable at run time: POST <upstream>/__config):
  --latency-ms N         added to every book-API answer
  --error-rate F         fraction answered HTTP 500
  --rate-429 F           fraction answered 429 + Retry-After
  --hang-rate F          fraction never answered
  --malformed-rate F     fraction answered with truncated JSON
  --rate-limit N         requests/second above which the stand-in answers 429 (0 = off)
  --failing-fraction F   fraction of authors that always get 500`;

function usageError(message: string): never {
  process.stderr.write(`dev:offline: ${message}\n\n${USAGE}\n`);
  process.exit(2);
}

function numberFlag(
  name: string,
  raw: string | undefined,
  check: { integer?: boolean; min?: number; max?: number } = {},
): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  const { integer = false, min = 0, max = Number.POSITIVE_INFINITY } = check;
  if (raw.trim() === "" || !Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || n > max) {
    usageError(
      `--${name} must be ${integer ? "a whole number" : "a number"} from ${min}${
        Number.isFinite(max) ? ` to ${max}` : " up"
      }, got "${raw}"`,
    );
  }
  return n;
}

function parseCli() {
  try {
    return parseArgs({
      options: {
        ...stringFlags(
          "port",
          "upstream-port",
          "inspector-port",
          "persist-to",
          "ol-rate",
          "gb-rate",
          "retry-base-seconds",
          "sweep-every",
        ),
        var: { type: "string", multiple: true },
        verbose: { type: "boolean", short: "v" },
        ...FAULT_FLAGS,
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (error) {
    usageError(errorMessage(error));
  }
}

async function main(): Promise<void> {
  const values = parseCli();
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const port = { integer: true, min: 0, max: 65535 };
  const fraction = { min: 0, max: 1 };
  const vars: Record<string, string> = {};
  for (const pair of values.var ?? []) {
    const at = pair.indexOf(":");
    if (at <= 0) usageError(`--var expects KEY:VALUE, got "${pair}"`);
    vars[pair.slice(0, at)] = pair.slice(at + 1);
  }
  const errorRate = numberFlag("error-rate", values["error-rate"], fraction);
  const upstream: FakeUpstreamOptions = {};
  const latencyMs = numberFlag("latency-ms", values["latency-ms"]);
  if (latencyMs !== undefined) upstream.latencyMs = latencyMs;
  if (errorRate !== undefined) upstream.statusRates = { "500": errorRate };
  const rate429 = numberFlag("rate-429", values["rate-429"], fraction);
  if (rate429 !== undefined) upstream.rate429 = rate429;
  const hangRate = numberFlag("hang-rate", values["hang-rate"], fraction);
  if (hangRate !== undefined) upstream.hangRate = hangRate;
  const malformedRate = numberFlag("malformed-rate", values["malformed-rate"], fraction);
  if (malformedRate !== undefined) upstream.malformedRate = malformedRate;
  const rateLimit = numberFlag("rate-limit", values["rate-limit"]);
  if (rateLimit !== undefined) upstream.rateLimitPerSecond = rateLimit;
  const failing = numberFlag("failing-fraction", values["failing-fraction"], fraction);
  if (failing !== undefined) upstream.failingAuthorFraction = failing;

  const options: OfflineStackOptions = {
    verbose: values.verbose ?? false,
    upstream,
    vars,
  };
  const set = <K extends keyof OfflineStackOptions>(key: K, value: OfflineStackOptions[K] | undefined) => {
    if (value !== undefined) options[key] = value;
  };
  set("port", numberFlag("port", values.port, port));
  set("upstreamPort", numberFlag("upstream-port", values["upstream-port"], port));
  set("inspectorPort", numberFlag("inspector-port", values["inspector-port"], { ...port, min: 1 }));
  set("persistTo", values["persist-to"]);
  set("olRate", numberFlag("ol-rate", values["ol-rate"]));
  set("gbRate", numberFlag("gb-rate", values["gb-rate"]));
  set("retryBaseSeconds", numberFlag("retry-base-seconds", values["retry-base-seconds"]));
  set("sweepEverySeconds", numberFlag("sweep-every", values["sweep-every"]));

  const stack = await startOfflineStack(options);
  const fixture = "test/fixtures/goodreads-2025.csv";
  const olRate = options.olRate ?? DEFAULT_OL_RATE;
  const gbRate = options.gbRate ?? DEFAULT_GB_RATE;
  const faults = Object.keys(upstream).length > 0 ? ` · faults ${JSON.stringify(upstream)}` : "";
  process.stdout.write(
    [
      "",
      "Kindling is running offline (no internet needed)",
      `  API        ${stack.url}   dashboard: ${stack.url}/   health: ${stack.url}/health`,
      `  token      ${stack.token}`,
      `  stand-in   ${stack.upstreamUrl}   stats: ${stack.upstreamUrl}/__stats${faults}`,
      `  rates      Open Library ${olRate}/s · Google Books ${gbRate}/s`,
      `  state      ${relative(REPO_ROOT, stack.persistTo)}`,
      `  logs       ${relative(REPO_ROOT, stack.logFile)}${options.verbose ? "" : "   (--verbose shows them here)"}`,
      `  inspector  127.0.0.1:${stack.inspectorPort}`,
      "",
      "Try:",
      `  npm run warm -- ${fixture}${stack.url === `http://${HOST}:${DEFAULT_PORT}` ? "" : ` --url ${stack.url}`}`,
      `  curl -X POST -H "Authorization: Bearer ${stack.token}" -H "Content-Type: text/csv" \\`,
      `       --data-binary @${fixture} "${stack.url}/api/jobs?maxDepth=1"`,
      "",
      "Ctrl-C to stop.",
      "",
    ].join("\n"),
  );

  await stack.exited;
  if (isShuttingDown()) return; // Ctrl-C: the cleanups stopped it
  // wrangler went away on its own: say why, then stop the rest.
  const tail = stack.wrangler
    .tail(20)
    .map((l) => `    ${l}`)
    .join("\n");
  process.stderr.write(
    `\nwrangler dev exited unexpectedly. Last output:\n${tail}\n  full log: ${stack.logFile}\n`,
  );
  await shutdownAndExit(1);
}

if (isEntryPoint(import.meta.url)) {
  main().catch(async (error: unknown) => {
    process.stderr.write(
      `dev:offline: ${error instanceof ProcessError ? error.details() : errorMessage(error)}\n`,
    );
    await shutdownAndExit(1);
  });
}
