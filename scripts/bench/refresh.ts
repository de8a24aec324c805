/**
 * The `refresh` scenario (issue #13 item 4): warm N authors, change a share of their works in the stand-in,
 * run the scheduled refresh (its cron, fired as local dev fires crons) and compare the refresh's KV writes
 * with the warm's. The warm of a cold cache writes every entry of those authors once (works by ISBN and
 * title, lists, markers): exactly what a full re-warm without the diff writes, so it is the baseline.
 */

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { hashFraction, worksForAuthor } from "../../test/support/upstream/catalogue.ts";
import { REPO_ROOT } from "../lib/processes.ts";
import { readSavedJson } from "../lib/saved-json.ts";
import { generateAuthorList, numberedAuthor } from "./csv.ts";
import { type Counters, info, round, slidingWindowMax, waitForJob, withStack } from "./harness.ts";

/** The last full refresh run (written by every run that is not --quick), for BENCHMARKS.md. */
export const REFRESH_RESULTS = join(REPO_ROOT, "bench", "refresh.json");

/** One side: warm the authors, change the catalogue, fire the refresh cron; what each step cost. */
export interface RefreshSide {
  mode: "diff" | "full";
  warm: { seconds: number; tasks: number; kvWrites: number; upstreamRequests: number };
  refresh: {
    jobId: string;
    kind: string;
    priority: string;
    tasks: number;
    tasksDone: number;
    seconds: number;
    kvWrites: number;
    kvReads: number;
    d1RowsWritten: number;
    upstreamRequests: number;
    /** Politeness while the refresh ran beside nothing else: Open Library requests in any 1 s, and 429s. */
    maxInAnyOneSecond: number;
    responses429: number;
  };
}

export interface RefreshResult {
  measuredAt?: string;
  authors: number;
  /** Works of those authors (at most MAX_WORKS_PER_AUTHOR each) and how many the stand-in changed. */
  works: number;
  changedWorks: number;
  changedFraction: number;
  /** REFRESH_DIFF=true (the product) and REFRESH_DIFF=false (every entry rewritten: a full re-warm). */
  diff: RefreshSide;
  full: RefreshSide;
  /** diff refresh KV writes ÷ full re-warm KV writes (the issue's target: ≤ 0.15). */
  kvWriteRatio: number;
  /** The KV writes the full side should make, counted from the catalogue: works' entries, lists, markers. */
  expectedFullKvWrites: number;
}

const REFRESH_CRON = "7 * * * *";
/** Open Library's production rate, enforced by the stand-in (a request above it is answered 429). */
export const REFRESH_BENCH_RATE = 3;
const MAX_WORKS = 200;

/** Works of the authors as the stand-in generates them, and how many `fraction` edits (same hash rule). */
function catalogueFigures(names: readonly string[], fraction: number) {
  let works = 0;
  let changed = 0;
  let entries = 0;
  for (const name of names) {
    const list = worksForAuthor(name).slice(0, MAX_WORKS);
    works += list.length;
    changed += list.filter((w) => hashFraction(w.key, "edited") < fraction).length;
    entries += list.reduce((n, w) => n + (w.isbn13s.length > 0 ? 2 : 1), 0) + 2;
  }
  return { works, changed, entries };
}

async function settled(api: { counters(s?: AbortSignal): Promise<Counters> }, signal: AbortSignal) {
  let previous = await api.counters(signal);
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, 500));
    const current = await api.counters(signal);
    if (JSON.stringify(current) === JSON.stringify(previous)) return current;
    previous = current;
  }
  return previous;
}

async function refreshSide(
  mode: RefreshSide["mode"],
  csv: string,
  authors: number,
  fraction: number,
  signal: AbortSignal,
): Promise<RefreshSide> {
  return withStack(
    {
      name: `refresh-${mode}`,
      upstream: { openLibraryRateLimitPerSecond: REFRESH_BENCH_RATE },
      vars: {
        OPENLIBRARY_RATE_PER_SECOND: String(REFRESH_BENCH_RATE),
        GOOGLE_BOOKS_RATE_PER_SECOND: "0",
        // Open Library only: a work's merged record then depends on the stand-in's catalogue alone.
        GOOGLE_BOOKS_ENABLED: "false",
        // Everything the warm just wrote (lists expire in 24 h) is inside the horizon, and fits one run.
        REFRESH_HORIZON_HOURS: "25",
        REFRESH_MAX_ITEMS: String(authors),
        REFRESH_DIFF: mode === "diff" ? "true" : "false",
      },
      sweepEverySeconds: 30,
    },
    signal,
    async (stack) => {
      await stack.api.resetCounters(signal);
      info(`  ${mode}: warming ${authors} authors (maxDepth 0) …`);
      let started = performance.now();
      const upload = await stack.api.upload(csv, 0, signal, 120_000);
      const warmed = await waitForJob(stack.api, String(upload.body.jobId), signal, { pollMs: 500 });
      const warmSeconds = (warmed.finishedAt - started) / 1000;
      const warmCounters = await settled(stack.api, signal);
      const warmUpstream = stack.fake.stats().total;

      stack.fake.configure({ editedWorkFraction: fraction });
      await stack.api.resetCounters(signal);
      const arrivals: number[] = [];
      const throttledBefore = stack.fake.stats().byStatus["429"] ?? 0;
      const original = stack.fake.fetch.bind(stack.fake);
      stack.fake.fetch = (input, init) => {
        const url = input instanceof Request ? input.url : String(input);
        if (new URL(url, "http://stand-in").pathname === "/search.json")
          arrivals.push(performance.timeOrigin + performance.now());
        return original(input, init);
      };
      info(`  ${mode}: stand-in changed; firing the refresh cron …`);
      started = performance.now();
      const cron = encodeURIComponent(REFRESH_CRON);
      const fired = await fetch(`${stack.url}/cdn-cgi/local/scheduled?cron=${cron}`, {
        signal: AbortSignal.any([signal, AbortSignal.timeout(60_000)]),
      });
      await fired.body?.cancel();
      const listed = await fetch(`${stack.url}/api/jobs?limit=10`, {
        headers: { Authorization: `Bearer ${stack.token}` },
        signal,
      });
      const { jobs } = (await listed.json()) as { jobs: { jobId: string; kind: string; priority: string }[] };
      const job = jobs.find((j) => j.kind === "refresh");
      if (!job) throw new Error("the refresh cron created no refresh job");
      const refreshed = await waitForJob(stack.api, job.jobId, signal, { pollMs: 500 });
      // Counters were reset just before the cron: what they hold now is the refresh's (and its polls').
      const raw = await settled(stack.api, signal);
      const side: RefreshSide = {
        mode,
        warm: {
          seconds: round(warmSeconds, 1),
          tasks: warmed.progress.counts.total,
          kvWrites: warmCounters.kvWrites,
          upstreamRequests: warmUpstream,
        },
        refresh: {
          jobId: job.jobId,
          kind: job.kind,
          priority: job.priority,
          tasks: refreshed.progress.counts.total,
          tasksDone: refreshed.progress.counts.done,
          seconds: round((refreshed.finishedAt - started) / 1000, 1),
          kvWrites: raw.kvWrites,
          kvReads: raw.kvReads,
          d1RowsWritten: raw.d1RowsWritten,
          upstreamRequests: stack.fake.stats().total - warmUpstream,
          maxInAnyOneSecond: slidingWindowMax(arrivals, 1000),
          responses429: (stack.fake.stats().byStatus["429"] ?? 0) - throttledBefore,
        },
      };
      info(
        `  ${mode}: refresh ${side.refresh.tasksDone}/${side.refresh.tasks} done in ${side.refresh.seconds} s · ` +
          `KV writes ${side.refresh.kvWrites} (the warm: ${side.warm.kvWrites})`,
      );
      return side;
    },
  );
}

/**
 * Both sides on fresh stacks doing identical work: the product (diff on) and a full re-warm (diff off,
 * every entry of every refreshed author written again), so the ratio compares like with like.
 */
export async function runRefresh(
  authors: number,
  fraction: number,
  runSide: <T>(what: string, seconds: number, fn: (signal: AbortSignal) => Promise<T>) => Promise<T>,
  sideSeconds: number,
  save: boolean,
): Promise<RefreshResult> {
  const prefix = "Refresh Author";
  const file = generateAuthorList(prefix, authors);
  const width = Math.max(4, String(authors).length);
  const names = Array.from({ length: authors }, (_, i) => numberedAuthor(prefix, i, width).name);
  const figures = catalogueFigures(names, fraction);
  const diff = await runSide("refresh (diff)", sideSeconds, (s) =>
    refreshSide("diff", file.csv, authors, fraction, s),
  );
  const full = await runSide("refresh (full re-warm)", sideSeconds, (s) =>
    refreshSide("full", file.csv, authors, fraction, s),
  );
  const result: RefreshResult = {
    measuredAt: new Date().toISOString(),
    authors,
    works: figures.works,
    changedWorks: figures.changed,
    changedFraction: round(figures.changed / Math.max(1, figures.works), 4),
    diff,
    full,
    kvWriteRatio: round(diff.refresh.kvWrites / Math.max(1, full.refresh.kvWrites), 4),
    expectedFullKvWrites: figures.entries,
  };
  if (save) writeFileSync(REFRESH_RESULTS, `${JSON.stringify(result, null, 2)}\n`);
  return result;
}

export function formatRefresh(r: RefreshResult): string {
  const line = (side: RefreshSide) =>
    `  ${side.mode === "diff" ? "refresh (diff)        " : "full re-warm (no diff)"}: job ${side.refresh.jobId} ` +
    `(${side.refresh.kind}, ${side.refresh.priority}) ${side.refresh.tasksDone}/${side.refresh.tasks} done · ` +
    `${side.refresh.kvWrites} KV writes · ${side.refresh.kvReads} KV reads · ${side.refresh.d1RowsWritten} D1 rows written · ` +
    `${side.refresh.upstreamRequests} upstream requests · ${side.refresh.seconds} s · max in 1 s ${side.refresh.maxInAnyOneSecond}, ` +
    `${side.refresh.responses429} × 429 (its warm: ${side.warm.kvWrites} KV writes)`;
  return [
    `refresh: ${r.authors} authors, ${r.works} works, ${r.changedWorks} changed in the stand-in (${(r.changedFraction * 100).toFixed(1)} %)`,
    line(r.diff),
    line(r.full),
    `  expected full re-warm writes from the catalogue: ${r.expectedFullKvWrites}`,
    `  KV writes refresh ÷ full re-warm: ${(r.kvWriteRatio * 100).toFixed(1)} % (target ≤ 15 %)`,
  ].join("\n");
}

/** The issue's figure: the refresh's KV writes at most 15 % of a full re-warm's. */
export function refreshTarget(r: RefreshResult | undefined) {
  const target = {
    id: "refresh.kv_writes",
    scenario: "refresh" as const,
    what: r
      ? `Refresh ${r.authors} authors after ${(r.changedFraction * 100).toFixed(1)} % of their works changed: KV writes vs a full re-warm`
      : "Refresh after 10 % of the works changed: KV writes vs a full re-warm",
    target: "≤ 15 %",
    value: r ? round(r.kvWriteRatio * 100, 1) : null,
    display: r
      ? `${(r.kvWriteRatio * 100).toFixed(1)} % (${r.diff.refresh.kvWrites} of ${r.full.refresh.kvWrites})`
      : "—",
    met: r ? r.kvWriteRatio <= 0.15 : null,
  };
  if (target.met === false && r) {
    return {
      ...target,
      why:
        `Each refreshed author still costs two puts whatever changed: its works list (the entry that expires; ` +
        `a put is KV's only way to renew a TTL) and its processed marker (lastRefreshedAt). Those are ` +
        `${2 * r.authors} of the ${r.diff.refresh.kvWrites} writes; the rest are the changed works' ISBN and title entries.`,
    };
  }
  return target;
}

export function savedRefresh(): RefreshResult | undefined {
  return readSavedJson<RefreshResult>(REFRESH_RESULTS);
}

/** The BENCHMARKS.md section: both sides of the last refresh run, then the target. */
export function renderRefreshMarkdown(r: RefreshResult | undefined): string {
  const head = "## 8. Scheduled refresh\n";
  if (!r) return `${head}\nNot measured yet (\`npm run bench -- --only refresh\`).\n`;
  const row = (label: string, f: (s: RefreshSide) => string | number) =>
    `| ${label} | ${f(r.diff)} | ${f(r.full)} |`;
  const t = refreshTarget(r);
  const p = refreshPolitenessTarget(r);
  return `${head}
Warm ${r.authors} authors (maxDepth 0, Open Library only, at ${REFRESH_BENCH_RATE}/s enforced by the stand-in),
change ${r.changedWorks} of their ${r.works} works in the stand-in (${(r.changedFraction * 100).toFixed(1)} %),
fire the refresh cron, and count what the refresh job costs; each side on its own fresh stack. The full
re-warm is the same refresh with \`REFRESH_DIFF=false\` (every entry rewritten); its writes match the
${r.expectedFullKvWrites} the catalogue predicts. Measured ${r.measuredAt ?? "(time not recorded)"} (\`bench/refresh.json\`).

| | refresh (diff, the product) | full re-warm |
|---|---|---|
${row("KV writes", (s) => s.refresh.kvWrites)}
${row("KV reads", (s) => s.refresh.kvReads)}
${row("D1 rows written", (s) => s.refresh.d1RowsWritten)}
${row("upstream requests", (s) => s.refresh.upstreamRequests)}
${row("tasks done", (s) => `${s.refresh.tasksDone} of ${s.refresh.tasks}`)}
${row("job kind, priority", (s) => `${s.refresh.kind}, ${s.refresh.priority}`)}
${row("seconds, cron to completed", (s) => s.refresh.seconds)}
${row(`most Open Library requests in any 1 s (R = ${REFRESH_BENCH_RATE})`, (s) => s.refresh.maxInAnyOneSecond ?? "not measured")}
${row("429 answers during the refresh", (s) => s.refresh.responses429 ?? "not measured")}

| What | Measured | Target | Result |
|---|---|---|---|
| ${t.what} | ${t.display} | ${t.target} | ${t.met ? "met" : "**missed**"} |
| ${p.what} | ${p.display} | ${p.target} | ${p.met === null ? "not measured" : p.met ? "met" : "**missed**"} |
${"why" in t ? `\n${t.why}\n` : ""}`;
}

/** Politeness under the refresh: never above R in any second, 0 × 429 (the product's side). */
export function refreshPolitenessTarget(r: RefreshResult | undefined) {
  const side = r?.diff.refresh;
  const measured = side?.maxInAnyOneSecond !== undefined && side.responses429 !== undefined;
  return {
    id: "refresh.politeness",
    scenario: "refresh" as const,
    what: `Politeness during the refresh (Open Library at ${REFRESH_BENCH_RATE}/s): most requests in any 1 s, 429s`,
    target: `≤ ${REFRESH_BENCH_RATE}, 0`,
    value: measured ? side.maxInAnyOneSecond : null,
    display: measured ? `${side.maxInAnyOneSecond}, ${side.responses429}` : "—",
    met: measured ? side.maxInAnyOneSecond <= REFRESH_BENCH_RATE && side.responses429 === 0 : null,
  };
}
