/**
 * The one-command demo: `npm ci && npm run demo`.
 *
 * Starts a throw-away offline stack (fake book APIs + `wrangler dev --local` on random free ports, with
 * fresh state in .wrangler/demo-<timestamp>/), uploads the bundled Goodreads export with maxDepth 2,
 * shows progress and the summary, then stops everything and removes the state — also on Ctrl-C or error.
 * Exit code: the warm run's (0 when the job completed and works were cached).
 *
 *   npm run demo [-- --verbose] [-- --keep-state] [-- --max-depth N] [-- --timeout SECONDS]
 */
import { rmSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join, relative } from "node:path";
import { parseArgs } from "node:util";
import { startOfflineStack } from "./dev-offline.ts";
import {
  errorMessage,
  isEntryPoint,
  onCleanup,
  ProcessError,
  REPO_ROOT,
  runCleanups,
  shutdownAndExit,
  timestampForFile,
} from "./lib/processes.ts";
import { formatDuration, runWarm, type WarmSummary } from "./warm.ts";

export const DEMO_FILE = "test/fixtures/goodreads-2025.csv";

const USAGE = `usage: npm run demo [-- options]
  --max-depth N        0–3 (default 2)
  --timeout SECONDS    give up after this long (default 600)
  --keep-state         keep .wrangler/demo-<timestamp>/ afterwards (to inspect D1/KV)
  --verbose            show wrangler's output (it always goes to .wrangler/logs/)`;

function usageError(message: string): never {
  process.stderr.write(`demo: ${message}\n\n${USAGE}\n`);
  process.exit(2);
}

function parseCli() {
  try {
    return parseArgs({
      options: {
        "max-depth": { type: "string" },
        timeout: { type: "string" },
        "keep-state": { type: "boolean" },
        verbose: { type: "boolean", short: "v" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (error) {
    usageError(errorMessage(error));
  }
}

function integer(name: string, raw: string | undefined, fallback: number, min: number, max: number) {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isInteger(n) || n < min || n > max) {
    usageError(`--${name} must be a whole number from ${min} to ${max}, got "${raw}"`);
  }
  return n;
}

async function main(): Promise<number> {
  const values = parseCli();
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const maxDepth = integer("max-depth", values["max-depth"], 2, 0, 3);
  const timeoutSeconds = integer("timeout", values.timeout, 600, 1, 24 * 3600);
  const started = Date.now();
  const seconds = () => (Date.now() - started) / 1000;

  const persistTo = join(REPO_ROOT, ".wrangler", `demo-${timestampForFile()}`);
  const shown = relative(REPO_ROOT, persistTo);
  if (!values["keep-state"]) {
    // Registered first, so it runs last: after wrangler (which holds the files open) has stopped.
    onCleanup(
      "remove demo state",
      () => rm(persistTo, { recursive: true, force: true }),
      () => rmSync(persistTo, { recursive: true, force: true }),
    );
  }

  process.stderr.write(`Kindling demo: starting an offline stack (fresh state in ${shown}) …\n`);
  const stack = await startOfflineStack({
    port: 0,
    upstreamPort: 0,
    persistTo,
    verbose: values.verbose ?? false,
    logName: "demo",
    sweepEverySeconds: 10,
    log: (m) => process.stderr.write(`  ${m}\n`),
  });
  const startup = seconds();
  process.stderr.write(`  worker ready on ${stack.url} after ${formatDuration(startup)}\n\n`);

  const result = await runWarm({
    file: relative(process.cwd(), join(REPO_ROOT, DEMO_FILE)) || DEMO_FILE,
    url: stack.url,
    token: stack.token,
    maxDepth,
    timeoutSeconds,
  });
  const warmed = seconds() - startup;
  const upstream = stack.upstream.upstream.stats();
  const upstreamRequests = upstream.total;
  const perAuthor = requestsPerAuthor(upstream.byPath, result.summary);

  await stack.stop();
  await runCleanups();
  process.stdout.write(
    `\nDemo ${result.exitCode === 0 ? "finished" : "FAILED"} in ${formatDuration(seconds())} ` +
      `(startup ${formatDuration(startup)}, warming ${formatDuration(warmed)}; ` +
      `the stand-in answered ${upstreamRequests.toLocaleString("en-US")} book-API requests${perAuthor})\n`,
  );
  process.stdout.write(
    values["keep-state"]
      ? `State kept in ${shown}; wrangler log: ${relative(REPO_ROOT, stack.logFile)}\n`
      : `Everything stopped and ${shown} removed; wrangler log: ${relative(REPO_ROOT, stack.logFile)}\n`,
  );
  return result.exitCode;
}

if (isEntryPoint(import.meta.url)) {
  main().then(
    (code) => shutdownAndExit(code),
    async (error: unknown) => {
      process.stderr.write(
        `demo: ${error instanceof ProcessError ? error.details() : errorMessage(error)}\n`,
      );
      await shutdownAndExit(1);
    },
  );
}

/** Upstream requests per warmed author and provider (Google Books paths start with /books/v1). */
function requestsPerAuthor(byPath: Record<string, number>, summary: WarmSummary): string {
  const authors = (summary.counts?.total ?? 0) - (summary.isbns?.total ?? 0);
  if (authors <= 0) return "";
  let google = 0;
  let openLibrary = 0;
  for (const [path, n] of Object.entries(byPath)) {
    if (path.startsWith("/books/v1")) google += n;
    else openLibrary += n;
  }
  const per = (n: number) => (n / authors).toFixed(2);
  return `: Open Library ${openLibrary} = ${per(openLibrary)} per author, Google Books ${google} = ${per(google)} per author, over ${authors} authors`;
}
