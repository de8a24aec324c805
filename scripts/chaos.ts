/**
 * `npm run chaos`: a soak of the real worker (wrangler dev, local D1/KV/Queues) against the book-API
 * stand-in misbehaving on purpose, with the consumer crashing and every message delivered twice.
 * It checks that nothing is lost and nothing is counted twice, then stops the faults and redrives.
 *
 * Flags: --authors N (default 5000), --max-depth N (default 2), --timeout-seconds N (default 570),
 * --verbose. Stays on loopback; stops itself and cleans up what it started; exit 1 if any check fails.
 */
import { rmSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { parseArgs } from "node:util";
import type { JobProgress } from "../src/api/job-responses.ts";
import { alwaysFails, CHAOS_FAULTS, NO_FAULTS } from "../test/support/upstream/chaos-profile.ts";
import { startBundledStack } from "./bench/harness.ts";
import {
  checkStages,
  exerciseControls,
  type SideJobs,
  uploadSideJobs,
  waitForStages,
} from "./chaos/lifecycle.ts";
import { priorityMismatches, uploadHighJob } from "./chaos/priorities.ts";
import { pollJob } from "./lib/poll-job.ts";
import { isEntryPoint, REPO_ROOT, shutdownAndExit, timestampForFile } from "./lib/processes.ts";

/** Worker settings for the soak's time scale (documented in docs/BENCHMARKS.md). */
const CHAOS_VARS = {
  RETRY_BASE_SECONDS: "1",
  RETRY_MAX_SECONDS: "4",
  UPSTREAM_TIMEOUT_MS: "1000",
  BREAKER_COOLDOWN_SECONDS: "5",
  MAX_WORKS_PER_AUTHOR: "40",
  OPENLIBRARY_RATE_PER_SECOND: "0",
  GOOGLE_BOOKS_RATE_PER_SECOND: "0",
};

interface Audit {
  taskCounts: Record<string, number>;
  counterMismatches: string[];
  tasks: { authorKey: string; authorName: string; status: string }[];
  incompleteDone: { authorKey: string; missing: string[] }[];
  doneChecked: number;
  doneTotal: number;
}

const log = (message: string) =>
  process.stderr.write(`[chaos ${new Date().toISOString().slice(11, 19)}] ${message}\n`);

async function json<T>(url: string, init?: RequestInit): Promise<T> {
  const response = await fetch(url, init);
  const text = await response.text();
  if (!response.ok)
    throw new Error(`${init?.method ?? "GET"} ${url} → ${response.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

const post = (body: unknown, token?: string): RequestInit => ({
  method: "POST",
  headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
  body: JSON.stringify(body),
});

/** Follows the job to its end (null if the deadline comes first), logging its progress every 10 s. */
function waitForTerminal(
  url: string,
  token: string,
  jobId: string,
  deadline: number,
): Promise<JobProgress | null> {
  let lastLine = 0;
  return pollJob(url, token, jobId, {
    intervalMs: 2000,
    deadline,
    onProgress: (progress) => {
      if (Date.now() - lastLine > 10_000) {
        lastLine = Date.now();
        log(
          `${progress.status} ${progress.percent}% ${JSON.stringify(progress.counts)} works ${progress.worksCached}`,
        );
      }
    },
  });
}

async function audit(url: string, jobId: string): Promise<Audit> {
  const first = await json<Audit>(`${url}/__test/audit/${jobId}?offset=0&limit=500`);
  const incomplete = [...first.incompleteDone];
  let checked = first.doneChecked;
  while (checked < first.doneTotal) {
    const page = await json<Audit>(`${url}/__test/audit/${jobId}?offset=${checked}&limit=500`);
    incomplete.push(...page.incompleteDone);
    if (page.doneChecked === 0) break;
    checked += page.doneChecked;
  }
  return { ...first, incompleteDone: incomplete, doneChecked: checked };
}

/** Whole seconds from `from` to `to` (null when the job never finished). */
const secondsBetween = (from: number, to: number | undefined) =>
  to === undefined ? null : Math.round((to - from) / 1000);

/** The soak's checks; each failed one is a line in the returned list. */
function check(
  audit: Audit,
  finalStatus: string | undefined,
  expectErrors: boolean,
  lifecycle: { wanted?: string; cancelled?: boolean } = {},
): string[] {
  const failures: string[] = [];
  const open =
    (audit.taskCounts.pending ?? 0) + (audit.taskCounts.queued ?? 0) + (audit.taskCounts.running ?? 0);
  if (open > 0) failures.push(`${open} tasks are not terminal: ${JSON.stringify(audit.taskCounts)}`);
  const sum = Object.values(audit.taskCounts).reduce((a, b) => a + b, 0);
  if (sum !== audit.tasks.length) failures.push(`counts per state sum to ${sum}, not ${audit.tasks.length}`);
  for (const m of audit.counterMismatches) failures.push(`counted twice or lost: ${m}`);
  const lost = new Set(
    audit.tasks.filter((t) => t.status === "dead" || t.status === "failed").map((t) => t.authorKey),
  );
  const expected = new Set(
    expectErrors ? audit.tasks.filter((t) => alwaysFails(t.authorName)).map((t) => t.authorKey) : [],
  );
  const unexpected = [...lost].filter((k) => !expected.has(k));
  const missing = [...expected].filter((k) => !lost.has(k));
  const some = (keys: string[]) =>
    `${keys.length}: ${keys.slice(0, 10).join(", ")}${keys.length > 10 ? ", …" : ""}`;
  if (unexpected.length > 0)
    failures.push(`dead/failed but not an always-failing author, ${some(unexpected)}`);
  // A cancelled job's always-failing authors may have been cancelled before they failed.
  if (missing.length > 0 && !lifecycle.cancelled)
    failures.push(`always-failing author not dead/failed, ${some(missing)}`);
  if (audit.incompleteDone.length > 0) {
    failures.push(
      `${audit.incompleteDone.length} done authors lack works or marker, e.g. ${JSON.stringify(audit.incompleteDone.slice(0, 3))}`,
    );
  }
  if (audit.doneChecked !== audit.doneTotal)
    failures.push(`checked ${audit.doneChecked} of ${audit.doneTotal} done authors`);
  const wanted =
    lifecycle.wanted ?? (expectErrors && expected.size > 0 ? "completed_with_errors" : "completed");
  if (finalStatus !== wanted) failures.push(`job is ${finalStatus}, expected ${wanted}`);
  return failures;
}

/** docs/CHAOS.md: the last run's settings, checks and numbers, so the claim can be reproduced and compared. */
function writeRecord(
  opts: { authors: number; maxDepth: number; timeoutSeconds: number },
  summary: Record<string, unknown>,
  failures: string[],
): void {
  const text = `# Chaos soak

Written by \`npm run chaos -- --authors ${opts.authors} --max-depth ${opts.maxDepth}\` on ${new Date().toISOString()}
(${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}). Rewritten by every run.

## Reproduce

\`\`\`sh
npm run chaos                        # 5,000 authors, maxDepth 2, stops itself within 10 minutes
npm run chaos -- --authors 1000      # a shorter soak with the same checks
\`\`\`

## What is injected
- Stand-in: ${JSON.stringify(CHAOS_FAULTS)} (HTTP 500 on 20%, 429 with Retry-After on 5%, 2% of requests hang
  until the worker's timeout, 1% malformed JSON, 1% of authors always fail).
- Worker (\`/__test/modes\`): the consumer throws on 2% of deliveries (before or after processing, so the
  platform retries the whole batch) and every message sent to the warm queue is sent twice.
- Worker settings for the soak's time scale: ${JSON.stringify(CHAOS_VARS)}.

## What is checked (exit 1 if any fails)
Every task terminal and the counts per state summing to the total; the job's counters equal to the task
rows (nothing lost, nothing counted twice); the dead/failed set exactly the always-failing authors; every
done author's works in KV and D1 and its processed marker; the job \`completed_with_errors\`; then, with the
faults stopped, a redrive brings every task home and the same checks hold.
Lifecycle (#12): two side jobs of authors/10 authors run under the same faults; one is cancelled and one
paused for 20 s then resumed once each has 10% of its tasks terminal. The cancelled job must end
\`cancelled\` with no open task, its counters equal to its rows (cancelled included) and no innocent author
dead; the paused one must not move while paused (after 6 s for in-flight batches), fail nothing while
paused, and finish with the main job's checks; the main and the resumed job's stages must all be SUCCESS,
their manifests served and verify's invariants all true.
Priorities (#13): a \`high\` job of authors/20 authors (at least 20) is uploaded right after the main
\`normal\` job and runs beside it under the same faults; it is held to every check the main job is (terminal
tasks, counters equal to rows, exactly the always-failing authors dead/failed, every done author complete,
stages SUCCESS with manifest and verify, redrive after the faults stop), and each job must report the
priority it was uploaded with. Each job's time from upload to finish is recorded (\`priorities\` below).

## Result: ${failures.length === 0 ? "ALL CHECKS PASSED" : `${failures.length} CHECK(S) FAILED`}

${failures.length === 0 ? "" : `${failures.map((f) => `- ${f}`).join("\n")}\n\n`}\`\`\`json
${JSON.stringify(summary, null, 2)}
\`\`\`
`;
  writeFileSync(`${REPO_ROOT}/docs/CHAOS.md`, text);
}

/** The side jobs' invariants (like the main job's) and every finished job's stages and manifest. */
async function lifecycleChecks(
  url: string,
  token: string,
  mainId: string,
  side: SideJobs,
  deadline: number,
): Promise<string[]> {
  const failures: string[] = [];
  const cancelled = await audit(url, side.cancelId);
  failures.push(
    ...check(cancelled, "cancelled", true, { wanted: "cancelled", cancelled: true }).map(
      (f) => `cancelled job: ${f}`,
    ),
  );
  if ((cancelled.taskCounts.cancelled ?? 0) === 0) failures.push("cancelled job: no task ended cancelled");
  const resumed = await waitForTerminal(url, token, side.pauseId, deadline);
  failures.push(
    ...check(await audit(url, side.pauseId), resumed?.status ?? "unfinished", true).map(
      (f) => `paused job: ${f}`,
    ),
  );
  for (const [id, label] of [
    [mainId, "main job"],
    [side.pauseId, "paused job"],
  ] as const) {
    failures.push(
      ...(await checkStages(url, token, id, await waitForStages(url, token, id, deadline), label)),
    );
  }
  log(`lifecycle checks: ${failures.length === 0 ? "all passed" : failures.join(" | ")}`);
  return failures;
}

export async function runChaos(opts: {
  authors: number;
  maxDepth: number;
  timeoutSeconds: number;
  verbose: boolean;
}) {
  const started = Date.now();
  const deadline = started + opts.timeoutSeconds * 1000;
  const persistTo = `.wrangler/chaos-${timestampForFile()}`;
  // A bundle of the worker made now: wrangler dev would reload on any edit to src/ during the soak, and a
  // reload drops the local queue's in-memory messages.
  const stack = await startBundledStack({
    persistTo,
    vars: CHAOS_VARS,
    sweepEverySeconds: 30,
    logName: "chaos",
    verbose: opts.verbose,
    log,
  });
  const hardStop = setTimeout(
    () => {
      log(`TIMED OUT after ${opts.timeoutSeconds} s: stopping`);
      void stack.stop().finally(() => shutdownAndExit(1));
    },
    (opts.timeoutSeconds + 20) * 1000,
  );
  const failures: string[] = [];
  try {
    await json(`${stack.upstreamUrl}/__config`, post(CHAOS_FAULTS));
    await json(`${stack.url}/__test/modes`, post({ crashRate: 0.02, duplicateDelivery: true }));
    await json(`${stack.url}/__test/counters`, { method: "DELETE" });
    const names = Array.from(
      { length: opts.authors },
      (_, i) => `Chaos Author ${String(i).padStart(5, "0")}`,
    );
    const csv = `Title,Author\n${names.map((a, i) => `Book ${i},${a}`).join("\n")}\n`;
    log(
      `uploading ${opts.authors} authors, maxDepth ${opts.maxDepth}; faults ${JSON.stringify(CHAOS_FAULTS)}`,
    );
    log("consumer crashes on 2% of deliveries; every message is delivered twice");
    // #12: two side jobs under the same faults, one cancelled and one paused then resumed mid-run. They go
    // first: the local queue is roughly first in, first out, so they are running while the main job is.
    const sideAuthors = Math.max(50, Math.round(opts.authors / 10));
    const side = await uploadSideJobs(stack.url, stack.token, sideAuthors, opts.maxDepth);
    log(`side jobs of ${sideAuthors} authors: cancel ${side.cancelId}, pause/resume ${side.pauseId}`);
    const mainUploadedAt = Date.now();
    const created = await json<{ jobId: string }>(`${stack.url}/api/jobs?maxDepth=${opts.maxDepth}`, {
      method: "POST",
      headers: { Authorization: `Bearer ${stack.token}`, "Content-Type": "text/csv" },
      body: csv,
    });
    // #13: a small high-priority job beside the main (normal) one, under the same faults.
    const high = await uploadHighJob(
      stack.url,
      stack.token,
      Math.max(20, Math.round(opts.authors / 20)),
      opts.maxDepth,
    );
    log(`high-priority job of ${high.authors} authors beside the main normal job: ${high.jobId}`);
    const soakDeadline = started + (opts.timeoutSeconds - 90) * 1000;
    const controls = exerciseControls(stack.url, stack.token, side, log);
    const finishedAt: Record<string, number> = {};
    const [soaked, highSoaked] = await Promise.all(
      [created.jobId, high.jobId].map((id) =>
        waitForTerminal(stack.url, stack.token, id, soakDeadline).then((p) => {
          finishedAt[id] = Date.now();
          return p;
        }),
      ),
    );
    failures.push(...(await controls).map((f) => `lifecycle: ${f}`));
    const counters = await json<Record<string, number>>(`${stack.url}/__test/counters`);
    const stats = await json<{ total: number; byStatus: Record<string, number> }>(
      `${stack.upstreamUrl}/__stats`,
    );
    const soakSeconds = (Date.now() - started) / 1000;
    const first = await audit(stack.url, created.jobId);
    const expectedDead = first.tasks.filter((t) => alwaysFails(t.authorName)).length;
    // An unfinished job still gets every check: what holds at any moment (nothing counted twice or lost,
    // no innocent author dead, every done author complete) is worth knowing when time ran out.
    if (!soaked) failures.push("the job did not finish before the soak deadline");
    failures.push(...check(first, soaked?.status ?? "unfinished", true));
    failures.push(...(await lifecycleChecks(stack.url, stack.token, created.jobId, side, soakDeadline)));
    // The high job: the same invariants, its stages, and both jobs' stored priorities.
    const highFirst = await audit(stack.url, high.jobId);
    const highExpectedDead = highFirst.tasks.filter((t) => alwaysFails(t.authorName)).length;
    if (!highSoaked) failures.push("high job: did not finish before the soak deadline");
    failures.push(...check(highFirst, highSoaked?.status ?? "unfinished", true).map((f) => `high job: ${f}`));
    failures.push(
      ...(await checkStages(
        stack.url,
        stack.token,
        high.jobId,
        await waitForStages(stack.url, stack.token, high.jobId, soakDeadline),
        "high job",
      )),
    );
    failures.push(
      ...priorityMismatches([
        { label: "main job", wanted: "normal", reported: soaked?.priority },
        { label: "high job", wanted: "high", reported: highSoaked?.priority },
      ]),
    );

    let redriven: JobProgress | null = null;
    let final: Audit | null = null;
    if (!soaked) {
      // The redrive is for a finished job's failed and dead tasks; an unfinished one has none to speak of.
      log("the job did not finish within the soak deadline: no redrive");
      failures.push("redrive not attempted: the job did not finish");
    } else if (expectedDead > 0) {
      log("faults stop; redriving the failed and dead tasks");
      await json(`${stack.upstreamUrl}/__config`, post(NO_FAULTS));
      await json(`${stack.url}/__test/modes`, post({ crashRate: 0, duplicateDelivery: false }));
      const redrive = await json<{ requeued: number }>(
        `${stack.url}/api/jobs/${created.jobId}/retry`,
        post({}, stack.token),
      );
      log(`redrive re-sent ${redrive.requeued} tasks`);
      redriven = await waitForTerminal(stack.url, stack.token, created.jobId, deadline);
      final = await audit(stack.url, created.jobId);
      failures.push(
        ...(redriven
          ? check(final, redriven.status, false).map((f) => `after redrive: ${f}`)
          : ["redrive did not finish"]),
      );
    }
    let highFinal: Audit | null = null;
    if (highSoaked && highExpectedDead > 0) {
      // The faults are off by now (the main job's redrive turned them off, or it had nothing to redrive).
      await json(`${stack.upstreamUrl}/__config`, post(NO_FAULTS));
      await json(`${stack.url}/__test/modes`, post({ crashRate: 0, duplicateDelivery: false }));
      await json(`${stack.url}/api/jobs/${high.jobId}/retry`, post({}, stack.token));
      const highRedriven = await waitForTerminal(stack.url, stack.token, high.jobId, deadline);
      highFinal = await audit(stack.url, high.jobId);
      failures.push(
        ...(highRedriven
          ? check(highFinal, highRedriven.status, false).map((f) => `high job after redrive: ${f}`)
          : ["high job: redrive did not finish"]),
      );
    }

    const summary = {
      authors: opts.authors,
      tasks: first.tasks.length,
      byState: first.taskCounts,
      terminalAtSoakEnd: `${first.tasks.length - (first.taskCounts.pending ?? 0) - (first.taskCounts.queued ?? 0) - (first.taskCounts.running ?? 0)} of ${first.tasks.length}`,
      alwaysFailing: expectedDead,
      deliveries: counters.consumerMessages,
      retriesAndDuplicates: (counters.consumerMessages ?? 0) - first.tasks.length,
      crashes: counters.crashes,
      upstreamRequests: stats.total,
      upstreamByStatus: stats.byStatus,
      soakSeconds: Math.round(soakSeconds),
      afterRedrive: final?.taskCounts ?? null,
      wallSeconds: Math.round((Date.now() - started) / 1000),
      lifecycle: { sideAuthors, cancelled: side.cancelId, pausedAndResumed: side.pauseId },
      priorities: {
        normal: {
          jobId: created.jobId,
          authors: opts.authors,
          tasks: first.tasks.length,
          byState: first.taskCounts,
          secondsToFinish: secondsBetween(mainUploadedAt, finishedAt[created.jobId]),
        },
        high: {
          jobId: high.jobId,
          authors: high.authors,
          tasks: highFirst.tasks.length,
          byState: highFirst.taskCounts,
          alwaysFailing: highExpectedDead,
          secondsToFinish: secondsBetween(high.uploadedAt, finishedAt[high.jobId]),
          afterRedrive: highFinal?.taskCounts ?? null,
        },
      },
      checksFailed: failures.length,
    };
    process.stdout.write(`\nChaos soak summary\n${JSON.stringify(summary, null, 2)}\n`);
    writeRecord(opts, summary, failures);
    if (failures.length === 0) process.stdout.write("\nALL CHECKS PASSED\n");
    else process.stdout.write(`\nCHECKS FAILED:\n${failures.map((f) => `  - ${f}`).join("\n")}\n`);
    return { failures, summary };
  } finally {
    clearTimeout(hardStop);
    await stack.stop();
    rmSync(`${REPO_ROOT}/${persistTo}`, { recursive: true, force: true });
  }
}

if (isEntryPoint(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      authors: { type: "string", default: "5000" },
      "max-depth": { type: "string", default: "2" },
      "timeout-seconds": { type: "string", default: "570" },
      verbose: { type: "boolean", default: false },
    },
  });
  const authors = Number(values.authors);
  const maxDepth = Number(values["max-depth"]);
  const timeoutSeconds = Number(values["timeout-seconds"]);
  if (
    !Number.isInteger(authors) ||
    authors < 1 ||
    !Number.isInteger(maxDepth) ||
    maxDepth < 0 ||
    maxDepth > 3
  ) {
    process.stderr.write(
      "usage: npm run chaos -- [--authors N] [--max-depth 0-3] [--timeout-seconds N] [--verbose]\n",
    );
    process.exit(2);
  }
  runChaos({ authors, maxDepth, timeoutSeconds, verbose: values.verbose ?? false })
    .then(({ failures }) => shutdownAndExit(failures.length === 0 ? 0 : 1))
    .catch((error: unknown) => {
      log(`error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      return shutdownAndExit(1);
    });
}
