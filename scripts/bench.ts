/**
 * Kindling benchmarks: the real worker in local workerd (wrangler dev) against the book-API stand-in.
 *
 *   npm run bench [-- --only ingest,warm,politeness,cost,progress] [--quick] [--verbose] [--write]
 *   npm run bench -- --render     (re-render docs/BENCHMARKS.md from bench/results.json, no run)
 *
 * Scenarios (see docs/BENCHMARKS.md): ingest, warm throughput, politeness, cost per author,
 * progress read, production politeness (scripts/bench/production-politeness.ts), and sharing the upstream
 * across jobs: priority, fairness, backpressure (scripts/bench/sharing.ts, bench/sharing.json). Every side of a comparison gets a fresh stack (fresh state directory under .wrangler/,
 * free loopback ports) in the same invocation, so each figure is a ratio or rate measured side by side.
 * Prints a table on stdout (progress on stderr). A full run of every scenario writes bench/results.json
 * and docs/BENCHMARKS.md; --quick and --only runs only print, unless --write is given.
 * Every process and state directory it starts is removed at the end, on error and on Ctrl-C; each
 * scenario has a time limit and is reported "timed out" when it runs past it.
 *
 * Exit codes: 0 every selected scenario ran (missed targets are results, not failures); 1 a scenario
 * failed or timed out; 2 bad usage.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname, join, relative } from "node:path";
import { parseArgs } from "node:util";
import {
  finishSnapshot,
  info,
  machineInfo,
  round,
  setStateRoot,
  setVerbose,
  TimedOut,
  withTimeout,
} from "./bench/harness.ts";
import { renderMarkdown } from "./bench/markdown.ts";
import { formatProduction, runProductionPoliteness } from "./bench/production-politeness.ts";
import { formatRefresh, runRefresh } from "./bench/refresh.ts";
import {
  type BenchResults,
  computeTargets,
  costOutcome,
  formatTable,
  SCENARIOS,
  type ScenarioName,
  type ScenarioOutcome,
} from "./bench/report.ts";
import {
  type Conditions,
  FULL_SIZES,
  QUICK_SIZES,
  runIngest,
  runPoliteness,
  runProgress,
  runWarm,
} from "./bench/scenarios.ts";
import { runSharing, SHARING_SCENARIOS } from "./bench/sharing.ts";
import { formatSharing } from "./bench/sharing-report.ts";
import {
  errorMessage,
  isEntryPoint,
  ProcessError,
  REPO_ROOT,
  runCleanups,
  shutdownAndExit,
} from "./lib/processes.ts";

const USAGE = `usage: npm run bench [-- options]
  --only LIST   comma-separated scenarios: ${SCENARIOS.join(",")} (default: all)
                (cost is computed from the warm run's counters; --only cost runs the Kindling warm side)
  --quick       smaller sizes for a fast smoke run (ingest 10k rows / 6k authors, warm 200 authors,
                politeness 8 s per rate, production politeness: the grouped side only)
  --verbose     show wrangler's output, stack start/stop and per-poll detail
  --write       write bench/results.json and docs/BENCHMARKS.md even for a --quick or --only run
                (a full run of every scenario always writes them)
  --merge       with --only: write the scenarios measured now into bench/results.json over their last
                results, keeping every other scenario as last measured (each says when: measuredAt),
                then rewrite docs/BENCHMARKS.md
  --state-dir DIR
                keep each stack's local state (D1, KV, R2 files) under DIR instead of .wrangler, e.g.
                /dev/shm: the local KV writes a file per entry, so a disk of varying speed moves the
                warm figures (the results record the directory and whether it is a tmpfs)
  --render      run nothing: recompute the targets and explanations from bench/results.json and
                rewrite docs/BENCHMARKS.md (after changing scripts/bench/report.ts or markdown.ts)
  -h, --help    this help`;

const RESULTS_FILE = join(REPO_ROOT, "bench", "results.json");
const DOC_FILE = join(REPO_ROOT, "docs", "BENCHMARKS.md");

function usageError(message: string): never {
  process.stderr.write(`bench: ${message}\n\n${USAGE}\n`);
  process.exit(2);
}

function parseCli() {
  let parsed: ReturnType<typeof parse>;
  function parse() {
    return parseArgs({
      options: {
        only: { type: "string" },
        quick: { type: "boolean" },
        verbose: { type: "boolean", short: "v" },
        write: { type: "boolean" },
        render: { type: "boolean" },
        merge: { type: "boolean" },
        "state-dir": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  }
  try {
    parsed = parse();
  } catch (error) {
    usageError(errorMessage(error));
  }
  const values = parsed.values;
  let only: ScenarioName[] = [...SCENARIOS];
  if (values.only !== undefined) {
    const names = values.only
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
    const unknown = names.filter((n) => !(SCENARIOS as readonly string[]).includes(n));
    if (names.length === 0 || unknown.length > 0) {
      usageError(`--only expects a list from ${SCENARIOS.join(",")}, got "${values.only}"`);
    }
    only = SCENARIOS.filter((s) => names.includes(s));
  }
  return {
    help: values.help ?? false,
    quick: values.quick ?? false,
    verbose: values.verbose ?? false,
    write: values.write ?? false,
    render: values.render ?? false,
    merge: values.merge ?? false,
    stateDir: values["state-dir"],
    only,
  };
}

/** Time limits per scenario side, in seconds: generous, so "timed out" means something is wrong. */
function limits(quick: boolean) {
  return quick
    ? { ingestKindling: 240, ingestNaive: 300, warmKindling: 300, warmNaive: 600, progress: 240 }
    : { ingestKindling: 360, ingestNaive: 300, warmKindling: 900, warmNaive: 2400, progress: 300 };
}

async function timed<T>(name: string, fn: () => Promise<T>): Promise<ScenarioOutcome<T>> {
  const started = performance.now();
  info(`▶ ${name}`);
  try {
    const result = await fn();
    const seconds = round((performance.now() - started) / 1000, 1);
    info(`✔ ${name} (${seconds} s)`);
    return { status: "ok", seconds, result, measuredAt: new Date().toISOString() };
  } catch (error) {
    const seconds = round((performance.now() - started) / 1000, 1);
    const message = error instanceof ProcessError ? error.details() : errorMessage(error);
    const status = error instanceof TimedOut ? "timed out" : "error";
    info(`✘ ${name}: ${status}: ${message}`);
    return { status, seconds, error: message };
  }
}

/** Targets, the table, the misses with their reasons and the notes about the run, on stdout. */
function report(results: BenchResults): void {
  results.targets = computeTargets(results);

  process.stdout.write(`\n${formatTable(results)}\n\n`);
  for (const [name, outcome] of Object.entries(results.scenarios)) {
    if (outcome.status === "error" || outcome.status === "timed out") {
      process.stdout.write(`${outcome.status.toUpperCase()} ${name}: ${outcome.error ?? ""}\n`);
    }
  }
  for (const t of results.targets.filter((t) => t.met === false)) {
    process.stdout.write(`MISSED ${t.id}: ${t.display} (target ${t.target})\n  ${t.why ?? ""}\n`);
  }
  const met = results.targets.filter((t) => t.met === true).length;
  const missed = results.targets.filter((t) => t.met === false).length;
  const unmeasured = results.targets.filter((t) => t.met === null).length;
  process.stdout.write(
    `\n${met} targets met, ${missed} missed, ${unmeasured} not measured · total ${results.totalSeconds} s\n`,
  );
  const code = results.code;
  if (code && code.sourceHashAtEnd !== code.sourceHash) {
    process.stdout.write(
      "note: src/ changed during the run; every stack ran the bundle taken at the start (see results.code)\n",
    );
  }
  if (code && Object.keys(code.extraMigrations ?? {}).length > 0) {
    process.stdout.write(
      "note: new migration files appeared during the run (see results.code.extraMigrations)\n",
    );
  }
  const others = new Set(results.overlap.flatMap((o) => o.otherProcesses));
  if (others.size > 0) {
    process.stdout.write(
      `note: other workerd/vitest/wrangler processes were running during the run (${others.size})\n`,
    );
  }
}

/**
 * The saved results with the scenarios measured now in place of theirs (a scenario measured before
 * `measuredAt` existed keeps the saved file's generatedAt as its date); the targets are recomputed.
 */
function mergedIntoSaved(now: BenchResults, measured: readonly ScenarioName[]): BenchResults {
  const saved = JSON.parse(readFileSync(RESULTS_FILE, "utf8")) as BenchResults;
  const scenarios = saved.scenarios as Record<string, ScenarioOutcome<unknown> | undefined>;
  for (const outcome of Object.values(scenarios))
    if (outcome && !outcome.measuredAt) outcome.measuredAt = saved.generatedAt;
  for (const name of measured)
    scenarios[name] = (now.scenarios as Record<string, ScenarioOutcome<unknown>>)[name];
  // The file's machine and code stay those of its full run; each merge records its own beside them.
  const merged: BenchResults = {
    ...saved,
    renderedAt: new Date().toISOString(),
    merges: [
      ...(saved.merges ?? []).filter((m) => !m.scenarios.every((name) => measured.includes(name))),
      { scenarios: [...measured], at: new Date().toISOString(), machine: now.machine, code: now.code },
    ],
    overlap: [
      ...saved.overlap.filter((o) => !measured.some((m) => o.scenario.startsWith(m))),
      ...now.overlap,
    ],
  };
  report(merged);
  return merged;
}

function writeResults(results: BenchResults): void {
  mkdirSync(dirname(RESULTS_FILE), { recursive: true });
  writeFileSync(RESULTS_FILE, `${JSON.stringify(results, null, 2)}\n`);
  mkdirSync(dirname(DOC_FILE), { recursive: true });
  writeFileSync(DOC_FILE, renderMarkdown(results));
  process.stdout.write(`wrote ${relative(REPO_ROOT, RESULTS_FILE)} and ${relative(REPO_ROOT, DOC_FILE)}\n`);
}

async function main(): Promise<number> {
  const cli = parseCli();
  if (cli.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (cli.render) {
    let results: BenchResults;
    try {
      results = JSON.parse(readFileSync(RESULTS_FILE, "utf8")) as BenchResults;
    } catch (error) {
      process.stderr.write(
        `bench: cannot read ${relative(REPO_ROOT, RESULTS_FILE)}: ${errorMessage(error)}\n`,
      );
      return 1;
    }
    results.renderedAt = new Date().toISOString();
    report(results);
    writeResults(results);
    return 0;
  }
  setVerbose(cli.verbose);
  if (cli.stateDir !== undefined) setStateRoot(cli.stateDir);
  const started = performance.now();
  const sizes = cli.quick ? QUICK_SIZES : FULL_SIZES;
  const limit = limits(cli.quick);
  const selected = new Set(cli.only);
  const notRun = <T>(): ScenarioOutcome<T> => ({ status: "not run", seconds: 0 });
  const results: BenchResults = {
    generatedAt: new Date().toISOString(),
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`,
    quick: cli.quick,
    only: cli.only,
    sizes,
    machine: machineInfo(),
    overlap: [],
    totalSeconds: 0,
    scenarios: {
      ingest: notRun(),
      warm: notRun(),
      politeness: notRun(),
      cost: notRun(),
      progress: notRun(),
      production: notRun(),
      refresh: notRun(),
    },
    targets: [],
  };
  const noteConditions = (scenario: string, c: Conditions | undefined) => {
    if (c)
      results.overlap.push({ scenario, loadAverage1m: c.loadAverage1m, otherProcesses: c.otherProcesses });
  };
  // A side runs in its own time limit; the scenario's signal is only for Ctrl-C-free bookkeeping.
  const runSide = <T>(what: string, seconds: number, fn: (signal: AbortSignal) => Promise<T>) =>
    withTimeout(what, seconds, fn);
  const never = new AbortController().signal;

  info(
    `Kindling benchmarks${cli.quick ? " (quick)" : ""}: ${cli.only.join(", ")} · ` +
      `${results.machine.cores} cores · load ${loadavg()
        .map((l) => l.toFixed(2))
        .join(" ")}`,
  );

  if (selected.has("ingest")) {
    results.scenarios.ingest = await timed("1. ingest", () =>
      runIngest(sizes, { kindlingSeconds: limit.ingestKindling, naiveSeconds: limit.ingestNaive }, runSide),
    );
    const r = results.scenarios.ingest.result;
    noteConditions("ingest (kindling)", r?.kindling.conditions);
    noteConditions("ingest (naive)", r?.naive?.conditions);
  }

  if (selected.has("warm") || selected.has("cost")) {
    const warm = await timed(
      selected.has("warm") ? "2. warm throughput" : "4. cost (Kindling warm run)",
      () =>
        runWarm(
          sizes,
          { naive: selected.has("warm"), kindlingSeconds: limit.warmKindling, naiveSeconds: limit.warmNaive },
          runSide,
        ),
    );
    if (selected.has("warm")) results.scenarios.warm = warm;
    const r = warm.result;
    noteConditions("warm (kindling)", r?.kindling.conditions);
    noteConditions("warm (naive)", r?.naive?.conditions);
    if (selected.has("cost")) {
      results.scenarios.cost = r
        ? { status: "ok", seconds: 0, result: costOutcome(r) }
        : {
            status: warm.status,
            seconds: warm.seconds,
            error: `the warm run it reads: ${warm.error ?? "?"}`,
          };
    }
  }

  if (selected.has("politeness")) {
    results.scenarios.politeness = await timed("3. politeness", () => runPoliteness(sizes, never, runSide));
    for (const run of results.scenarios.politeness.result?.runs ?? []) {
      noteConditions(`politeness R=${run.rate}`, run.conditions);
    }
    const errs = results.scenarios.politeness.result?.errors ?? [];
    if (errs.length > 0 && results.scenarios.politeness.status === "ok") {
      results.scenarios.politeness.status = errs.some((e) => e.includes("timed out")) ? "timed out" : "error";
      results.scenarios.politeness.error = errs.join("; ");
    }
  }

  if (selected.has("production")) {
    results.scenarios.production = await timed("6. production politeness", () =>
      runProductionPoliteness(runSide, { quick: cli.quick }),
    );
    const production = results.scenarios.production.result;
    if (production) process.stdout.write(`\n${formatProduction(production)}\n`);
  }

  const sharing = SHARING_SCENARIOS.filter((name) => selected.has(name));
  if (sharing.length > 0) {
    results.scenarios.sharing = await timed(`7. sharing the upstream (${sharing.join(", ")})`, () =>
      runSharing(sharing, runSide, { quick: cli.quick, write: cli.write }),
    );
    const shared = results.scenarios.sharing.result;
    if (shared) process.stdout.write(`\n${formatSharing(shared)}\n`);
    // A scenario that failed or timed out is reported as such, not hidden behind the others' numbers.
    if (shared && shared.errors.length > 0 && results.scenarios.sharing.status === "ok") {
      results.scenarios.sharing.status = shared.errors.some((e) => e.includes("timed out"))
        ? "timed out"
        : "error";
      results.scenarios.sharing.error = shared.errors.join("; ");
    }
  }

  if (selected.has("progress")) {
    results.scenarios.progress = await timed("5. progress read", () =>
      withTimeout("progress read", limit.progress, (signal) => runProgress(sizes, signal)),
    );
    noteConditions("progress", results.scenarios.progress.result?.conditions);
  }

  if (selected.has("refresh")) {
    // Issue #13: 1,000 authors (quick: the warm size), 10 % of their works changed in the stand-in.
    const authors = cli.quick ? sizes.warmAuthors : 1_000;
    results.scenarios.refresh = await timed("7. refresh", () =>
      runRefresh(authors, 0.1, runSide, cli.quick ? 300 : 900, !cli.quick || cli.write),
    );
    const refresh = results.scenarios.refresh.result;
    if (refresh) process.stdout.write(`\n${formatRefresh(refresh)}\n`);
  }

  // A comparison whose naive side failed still reports the Kindling side; say so in the status.
  for (const name of ["ingest", "warm"] as const) {
    const outcome = results.scenarios[name];
    const errors = outcome.result?.errors ?? [];
    if (outcome.status === "ok" && errors.length > 0) {
      outcome.status = errors.some((e) => e.includes("timed out")) ? "timed out" : "error";
      outcome.error = errors.join("; ");
    }
  }

  const code = finishSnapshot();
  if (code) results.code = code;
  results.totalSeconds = round((performance.now() - started) / 1000, 1);
  report(results);

  const complete = !cli.quick && cli.only.length === SCENARIOS.length;
  if (cli.merge && !cli.quick) {
    writeResults(mergedIntoSaved(results, cli.only));
  } else if (complete || cli.write) {
    writeResults(results);
  } else {
    process.stdout.write("(--quick / --only run: results not written; add --write to write them)\n");
  }
  const failed = Object.values(results.scenarios).some(
    (o) => o.status === "error" || o.status === "timed out",
  );
  return failed ? 1 : 0;
}

if (isEntryPoint(import.meta.url)) {
  main().then(
    async (code) => {
      await runCleanups();
      await shutdownAndExit(code);
    },
    async (error: unknown) => {
      process.stderr.write(
        `bench: ${error instanceof ProcessError ? error.details() : errorMessage(error)}\n`,
      );
      await shutdownAndExit(1);
    },
  );
}
