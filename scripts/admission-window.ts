/**
 * Measures the admission window (#13): for each window size, a fresh offline stack (stand-in + wrangler dev)
 * warms the bundled Goodreads export and the time from upload to completed job is printed, with the
 * upstream requests. `--windows none` runs without the ADMISSION_WINDOW var (the code's default, or code
 * from before admission when run from such a checkout).
 *
 *   node scripts/admission-window.ts [--windows 25,100,400] [--max-depth 2] [--ol-rate 50] [--runs 1]
 */
import { rm } from "node:fs/promises";
import { join, relative } from "node:path";
import { parseArgs } from "node:util";
import { DEMO_FILE } from "./demo.ts";
import { startOfflineStack } from "./dev-offline.ts";
import { REPO_ROOT, runCleanups, shutdownAndExit, timestampForFile } from "./lib/processes.ts";
import { runWarm } from "./warm.ts";

const { values } = parseArgs({
  options: {
    windows: { type: "string", default: "25,100,400" },
    "max-depth": { type: "string", default: "2" },
    "ol-rate": { type: "string", default: "50" },
    runs: { type: "string", default: "1" },
  },
});

interface Row {
  window: string;
  run: number;
  status: string | null;
  tasks: number;
  seconds: number;
  upstream: number;
}

async function measure(window: string, run: number): Promise<Row> {
  const persistTo = join(REPO_ROOT, ".wrangler", `admission-${timestampForFile()}`);
  const stack = await startOfflineStack({
    port: 0,
    upstreamPort: 0,
    persistTo,
    logName: "admission-window",
    sweepEverySeconds: 10,
    olRate: Number(values["ol-rate"]),
    vars: window === "none" ? {} : { ADMISSION_WINDOW: window },
    log: () => {},
  });
  try {
    const { summary } = await runWarm({
      file: relative(process.cwd(), join(REPO_ROOT, DEMO_FILE)) || DEMO_FILE,
      url: stack.url,
      token: stack.token,
      maxDepth: Number(values["max-depth"]),
      timeoutSeconds: 900,
      progress: "none",
      stdout: { write: () => true } as unknown as NodeJS.WritableStream,
    });
    return {
      window,
      run,
      status: summary.status,
      tasks: summary.counts?.total ?? 0,
      seconds: summary.elapsedSeconds,
      upstream: stack.upstream.upstream.stats().total,
    };
  } finally {
    await stack.stop();
    await rm(persistTo, { recursive: true, force: true });
  }
}

async function main(): Promise<number> {
  const rows: Row[] = [];
  for (let run = 1; run <= Number(values.runs); run++) {
    for (const window of String(values.windows).split(",")) {
      const row = await measure(window.trim(), run);
      rows.push(row);
      process.stdout.write(`${JSON.stringify(row)}\n`);
    }
  }
  process.stdout.write(
    "\n| window | run | status | tasks | seconds to complete | upstream requests |\n|---|---|---|---|---|---|\n",
  );
  for (const r of rows)
    process.stdout.write(
      `| ${r.window} | ${r.run} | ${r.status} | ${r.tasks} | ${r.seconds.toFixed(1)} | ${r.upstream} |\n`,
    );
  await runCleanups();
  return 0;
}

main().then(
  (code) => shutdownAndExit(code),
  async (error: unknown) => {
    process.stderr.write(`admission-window: ${String(error)}\n`);
    await shutdownAndExit(1);
  },
);
