/**
 * `npm run fuzz`: sends generated upload bodies (scripts/fuzz/bodies.ts: raw CSV, multipart, JSON, the
 * legacy POST /api/warming/upload and wrong content types) to the real worker (wrangler dev, local
 * D1/KV/Queues, book-API stand-in) and checks, at the end:
 *
 * 1. no answer was a 5xx (nor missing: a network error or a timeout counts too);
 * 2. the jobs in D1 are exactly the 202s (read with `wrangler d1 execute --local` once the stack is
 *    stopped): no job row from a refused request, one per accepted one;
 * 3. GET /health answers 200 after the barrage.
 *
 * Flags: --bodies N (default 10000), --seed N (default 1), --concurrency N (default 4),
 * --timeout-seconds N (default 900), --verbose. Loopback only, its own ports and state directory
 * (removed afterwards); every 5xx is saved as a reproducer under .wrangler/fuzz/<run>/. Exit 1 if a
 * check fails, 2 on bad flags. Body i comes from fast-check with seed `seed + floor(i / 100)`, so a run
 * is reproducible from its seed.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { cpus, totalmem } from "node:os";
import { join, relative } from "node:path";
import { parseArgs } from "node:util";
import fc from "fast-check";
import { startBundledStack } from "./bench/harness.ts";
import { describeRequest, type FuzzRequest, SHAPES, type Shape, uploadRequests } from "./fuzz/bodies.ts";
import { isEntryPoint, REPO_ROOT, shutdownAndExit, timestampForFile } from "./lib/processes.ts";

const CHUNK = 100;
const REQUEST_TIMEOUT_MS = 30_000;
const SHOW_5XX = 5;

const log = (message: string) =>
  process.stderr.write(`[fuzz ${new Date().toISOString().slice(11, 19)}] ${message}\n`);

interface Outcome {
  index: number;
  request: FuzzRequest;
  /** HTTP status, or 0 when there was no answer. */
  status: number;
  code: string;
  jobId: string | null;
  text: string;
}

interface ShapeTally {
  sent: number;
  byStatus: Record<string, number>;
  byCode: Record<string, number>;
}

function fixtures() {
  const read = (name: string) => readFileSync(join(REPO_ROOT, "test", "fixtures", name), "utf8");
  return {
    goodreads: [read("goodreads-2019.csv"), read("goodreads-2025.csv")],
    storygraph: [read("storygraph-2025.csv")],
  };
}

/** Two large bodies (a few MB) among the small ones: many rows accepted, and a big binary multipart. */
function bigBodies(): FuzzRequest[] {
  const rows = Array.from({ length: 60_000 }, (_, i) => `Book ${i},Big Author ${i % 50}`);
  const binary = new Uint8Array(3 * 1024 * 1024);
  for (let i = 0; i < binary.length; i++) binary[i] = (i * 2_654_435_761) >>> 24;
  const boundary = "----fuzzBig";
  const encoder = new TextEncoder();
  const head = encoder.encode(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\nContent-Type: text/csv\r\n\r\n`,
  );
  const tail = encoder.encode(`\r\n--${boundary}--\r\n`);
  const multipart = new Uint8Array(head.length + binary.length + tail.length);
  multipart.set(head, 0);
  multipart.set(binary, head.length);
  multipart.set(tail, head.length + binary.length);
  return [
    {
      shape: "csv",
      kind: "csv-body + big/60000-rows",
      path: "/api/jobs?maxDepth=0",
      headers: { "Content-Type": "text/csv" },
      body: encoder.encode(`Title,Author\n${rows.join("\n")}\n`),
      badToken: false,
    },
    {
      shape: "multipart",
      kind: "multipart/ok + big/3MiB-binary",
      path: "/api/jobs",
      headers: { "Content-Type": `multipart/form-data; boundary=${boundary}` },
      body: multipart,
      badToken: false,
    },
  ];
}

/** Body i of the run: chunk floor(i / 100) is sampled with seed + chunk. */
function* generate(count: number, seed: number): Generator<FuzzRequest> {
  const arbitrary = uploadRequests(fixtures());
  const big = bigBodies();
  let produced = 0;
  for (const request of big) {
    if (produced++ >= count) return;
    yield request;
  }
  for (let chunk = 0; produced < count; chunk++) {
    for (const request of fc.sample(arbitrary, { seed: seed + chunk, numRuns: CHUNK })) {
      if (produced++ >= count) return;
      yield request;
    }
  }
}

async function send(url: string, token: string, index: number, request: FuzzRequest): Promise<Outcome> {
  try {
    const response = await fetch(`${url}${request.path}`, {
      method: "POST",
      headers: { ...request.headers, Authorization: request.badToken ? "Bearer wrong" : `Bearer ${token}` },
      body: request.body,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = await response.text();
    let code = "";
    let jobId: string | null = null;
    try {
      const body = JSON.parse(text) as { jobId?: unknown; error?: { code?: unknown } };
      if (typeof body.error?.code === "string") code = body.error.code;
      if (typeof body.jobId === "string") jobId = body.jobId;
    } catch {
      code = "(not JSON)";
    }
    return { index, request, status: response.status, code, jobId, text };
  } catch (error) {
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return { index, request, status: 0, code: "(no answer)", jobId: null, text: message };
  }
}

/** Saves a failing request as a body file plus a curl command that replays it. */
function saveReproducer(dir: string, outcome: Outcome): string {
  mkdirSync(dir, { recursive: true });
  const base = join(dir, `${outcome.status || "noanswer"}-${outcome.index}`);
  writeFileSync(`${base}.body`, outcome.request.body);
  const headers = Object.entries(outcome.request.headers)
    .map(([k, v]) => `-H ${JSON.stringify(`${k}: ${v}`)}`)
    .join(" ");
  const curl = `curl -sS -X POST -H "Authorization: Bearer $TOKEN" ${headers} --data-binary @${relative(REPO_ROOT, base)}.body "$URL${outcome.request.path}"`;
  writeFileSync(
    `${base}.json`,
    `${JSON.stringify(
      {
        index: outcome.index,
        kind: outcome.request.kind,
        path: outcome.request.path,
        headers: outcome.request.headers,
        badToken: outcome.request.badToken,
        bodyBytes: outcome.request.body.length,
        status: outcome.status,
        answer: outcome.text.slice(0, 2000),
        replay: curl,
      },
      null,
      2,
    )}\n`,
  );
  return base;
}

/** Job ids in the stopped stack's D1 (wrangler d1 execute --local on the same state directory). */
function jobIdsInD1(persistTo: string): string[] {
  const require = createRequire(import.meta.url);
  const wrangler = join(require.resolve("wrangler/package.json"), "..", "bin", "wrangler.js");
  const out = execFileSync(
    process.execPath,
    [
      wrangler,
      "d1",
      "execute",
      "DB",
      "--local",
      "--persist-to",
      persistTo,
      "--json",
      "--command",
      "SELECT id FROM jobs",
    ],
    {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        WRANGLER_SEND_METRICS: "false",
        CLOUDFLARE_CF_FETCH_ENABLED: "false",
        CI: "true",
      },
      maxBuffer: 256 * 1024 * 1024,
      encoding: "utf8",
      timeout: 120_000,
    },
  );
  const parsed = JSON.parse(out.slice(out.indexOf("["))) as { results: { id: string }[] }[];
  return parsed.flatMap((r) => r.results.map((row) => row.id));
}

export async function runFuzz(opts: {
  bodies: number;
  seed: number;
  concurrency: number;
  timeoutSeconds: number;
  verbose: boolean;
}): Promise<{ failures: string[] }> {
  const started = Date.now();
  const stamp = timestampForFile();
  const persistTo = `.wrangler/fuzz-state-${stamp}`;
  const reproDir = join(REPO_ROOT, ".wrangler", "fuzz", stamp);
  const stack = await startBundledStack({
    persistTo,
    sweepEverySeconds: 0,
    logName: "fuzz",
    verbose: opts.verbose,
    log,
  });
  let stopped = false;
  const hardStop = setTimeout(
    () => {
      log(`TIMED OUT after ${opts.timeoutSeconds + 60} s: stopping`);
      void stack.stop().finally(() => shutdownAndExit(1));
    },
    (opts.timeoutSeconds + 60) * 1000,
  );
  const failures: string[] = [];
  const tally = new Map<Shape, ShapeTally>(SHAPES.map((s) => [s, { sent: 0, byStatus: {}, byCode: {} }]));
  const accepted = new Set<string>();
  const bad: Outcome[] = [];
  let sent = 0;
  let timedOut = false;
  try {
    log(`sending ${opts.bodies} bodies, seed ${opts.seed}, ${opts.concurrency} at a time, to ${stack.url}`);
    const deadline = started + opts.timeoutSeconds * 1000;
    const source = generate(opts.bodies, opts.seed);
    let next = 0;
    let lastLine = Date.now();
    const worker = async () => {
      for (;;) {
        if (Date.now() > deadline) {
          timedOut = true;
          return;
        }
        const item = source.next();
        if (item.done) return;
        const index = next++;
        const outcome = await send(stack.url, stack.token, index, item.value);
        sent++;
        const t = tally.get(outcome.request.shape) as ShapeTally;
        t.sent++;
        t.byStatus[outcome.status] = (t.byStatus[outcome.status] ?? 0) + 1;
        if (outcome.code !== "") t.byCode[outcome.code] = (t.byCode[outcome.code] ?? 0) + 1;
        if (outcome.status === 202 && outcome.jobId) accepted.add(outcome.jobId);
        if (outcome.status >= 500 || outcome.status === 0 || (outcome.status === 202 && !outcome.jobId)) {
          bad.push(outcome);
          saveReproducer(reproDir, outcome);
        }
        if (Date.now() - lastLine > 15_000) {
          lastLine = Date.now();
          log(`${sent}/${opts.bodies} sent, ${accepted.size} accepted, ${bad.length} bad answers`);
        }
      }
    };
    await Promise.all(Array.from({ length: opts.concurrency }, worker));
    const sendSeconds = (Date.now() - started) / 1000;
    if (timedOut) failures.push(`time ran out after ${sent} of ${opts.bodies} bodies`);

    const health = await fetch(`${stack.url}/health`, { signal: AbortSignal.timeout(30_000) }).then(
      async (r) => ({ status: r.status, text: (await r.text()).slice(0, 300) }),
      (error: unknown) => ({ status: 0, text: String(error) }),
    );
    if (health.status !== 200) failures.push(`/health answered ${health.status} at the end: ${health.text}`);

    await stack.stop();
    stopped = true;
    const ids = jobIdsInD1(stack.persistTo);
    const extra = ids.filter((id) => !accepted.has(id));
    const missing = [...accepted].filter((id) => !ids.includes(id));

    const fiveXX = bad.filter((o) => o.status >= 500);
    const noAnswer = bad.filter((o) => o.status === 0);
    if (fiveXX.length > 0) failures.push(`${fiveXX.length} answers were 5xx`);
    if (noAnswer.length > 0) failures.push(`${noAnswer.length} requests got no answer`);
    const badAccept = bad.filter((o) => o.status === 202);
    if (badAccept.length > 0) failures.push(`${badAccept.length} 202s without a jobId`);
    if (extra.length > 0)
      failures.push(`${extra.length} job rows in D1 from requests that were not accepted (202)`);
    if (missing.length > 0) failures.push(`${missing.length} accepted jobs have no row in D1`);

    const summary = {
      seed: opts.seed,
      bodiesRequested: opts.bodies,
      bodiesSent: sent,
      concurrency: opts.concurrency,
      accepted202: accepted.size,
      jobRowsInD1: ids.length,
      jobRowsNotFrom202: extra.length,
      fiveXX: fiveXX.length,
      noAnswer: noAnswer.length,
      healthAtEnd: health.status,
      sendSeconds: Math.round(sendSeconds),
      wallSeconds: Math.round((Date.now() - started) / 1000),
      byShape: Object.fromEntries(tally),
    };
    process.stdout.write(`\nFuzz summary\n${JSON.stringify(summary, null, 2)}\n`);
    if (bad.length > 0) {
      process.stdout.write(
        `\nFirst ${Math.min(SHOW_5XX, bad.length)} of ${bad.length} bad answers (reproducers in ${relative(REPO_ROOT, reproDir)}/):\n`,
      );
      for (const outcome of bad.slice(0, SHOW_5XX)) {
        process.stdout.write(
          `\n#${outcome.index} → ${outcome.status} ${outcome.text.slice(0, 200)}\n${describeRequest(outcome.request, 200)}\n`,
        );
      }
      const byKind = new Map<string, number>();
      for (const o of bad) {
        const kind = o.request.kind.replace(/\+.*$/, "").trim();
        const file = o.request.kind.replace(/^.*\+ /, "");
        const key = `${kind} / ${file}`;
        byKind.set(key, (byKind.get(key) ?? 0) + 1);
      }
      process.stdout.write(
        `\nBad answers by generator:\n${JSON.stringify(Object.fromEntries(byKind), null, 2)}\n`,
      );
    }
    if (failures.length === 0) process.stdout.write("\nALL CHECKS PASSED\n");
    else process.stdout.write(`\nCHECKS FAILED:\n${failures.map((f) => `  - ${f}`).join("\n")}\n`);
    mkdirSync(join(REPO_ROOT, ".wrangler", "fuzz"), { recursive: true });
    writeFileSync(
      join(REPO_ROOT, ".wrangler", "fuzz", "last-run.json"),
      `${JSON.stringify({ ...summary, failures, machine: { cores: cpus().length, memGiB: +(totalmem() / 2 ** 30).toFixed(1), node: process.version } }, null, 2)}\n`,
    );
    return { failures };
  } finally {
    clearTimeout(hardStop);
    if (!stopped) await stack.stop();
    rmSync(join(REPO_ROOT, persistTo), { recursive: true, force: true });
  }
}

if (isEntryPoint(import.meta.url)) {
  const usage =
    "usage: npm run fuzz -- [--bodies N] [--seed N] [--concurrency N] [--timeout-seconds N] [--verbose]\n";
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      options: {
        bodies: { type: "string", default: "10000" },
        seed: { type: "string", default: "1" },
        concurrency: { type: "string", default: "4" },
        "timeout-seconds": { type: "string", default: "900" },
        verbose: { type: "boolean", default: false },
      },
    }).values;
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n${usage}`);
    process.exit(2);
  }
  const whole = (name: string, min: number) => {
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n < min) {
      process.stderr.write(`--${name} must be a whole number ≥ ${min}\n${usage}`);
      process.exit(2);
    }
    return n;
  };
  runFuzz({
    bodies: whole("bodies", 1),
    seed: whole("seed", 0),
    concurrency: whole("concurrency", 1),
    timeoutSeconds: whole("timeout-seconds", 10),
    verbose: values.verbose === true,
  })
    .then(({ failures }) => shutdownAndExit(failures.length === 0 ? 0 : 1))
    .catch((error: unknown) => {
      log(`error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      return shutdownAndExit(1);
    });
}
