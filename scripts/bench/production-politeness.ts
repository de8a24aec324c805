/**
 * The "production politeness" scenario: the bundled Goodreads export (358 books) at maxDepth 2 against the
 * stand-in at production rates (Open Library 3/s, Google Books 1/s with 1,000 requests a day, 300 ms
 * latency, each rate enforced by the stand-in with 429s), twice on the same run: Kindling's grouped
 * queries (10 authors, 25 ISBNs per Open Library request) and one item per request. Reports time to
 * completed, requests per warmed item per provider, ISBN coverage and works cached.
 */

import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { JobProgress } from "../../src/api/job-responses.ts";
import { EXPORT_ISBNS } from "../../test/support/upstream/export-catalogue.ts";
import { REPO_ROOT } from "../lib/processes.ts";
import { readSavedJson } from "../lib/saved-json.ts";
import { info, round, slidingWindowMax, stateOfStacks, waitForJob, withStack } from "./harness.ts";

export const PRODUCTION_FILE = join(REPO_ROOT, "test", "fixtures", "goodreads-2025.csv");
export const PRODUCTION_RESULTS = join(REPO_ROOT, "bench", "production-politeness.json");
const RATES = { openlibrary: 3, googlebooks: 1 };
const GOOGLE_DAILY_QUOTA = 1000;
const LATENCY_MS = 300;
const MAX_DEPTH = 2;

export const PRODUCTION_TARGETS = {
  seconds: 60,
  openLibraryPerAuthor: 0.25,
  googlePerAuthor: 0.1,
  isbnCoverage: 0.95,
};

export interface ProductionSide {
  mode: "grouped" | "one-per-request";
  status: string;
  seconds: number;
  authors: number;
  isbnItems: number;
  isbnsWarm: number;
  /** Warm ISBN items ÷ the export's ISBNs the stand-in knows (it knows every one of them). */
  isbnCoverage: number;
  worksCached: number;
  requests: { openlibrary: number; googlebooks: number };
  perAuthor: { openlibrary: number; googlebooks: number };
  perItem: { openlibrary: number; googlebooks: number };
  maxInAnyOneSecond: { openlibrary: number; googlebooks: number };
  responses429: number;
  counts: JobProgress["counts"];
  quotas: JobProgress["quotas"];
  /** Where the time went, in seconds from the upload's start (see `timelineOf`); absent in older results. */
  timeline?: Timeline;
}

/** Seconds from the upload's start: the 202, the first and last Open Library request, completion. */
export interface Timeline {
  accepted: number;
  firstRequest: number | null;
  lastRequest: number | null;
  /** Mean seconds between consecutive Open Library requests (1 ÷ R when the limiter is the bottleneck). */
  meanRequestGap: number | null;
  /** The shortest time between two consecutive arrivals at the stand-in, per provider (ms; null: < 2 requests). */
  minGapMs: { openlibrary: number | null; googlebooks: number | null };
  completed: number;
}

export interface ProductionResult {
  generatedAt: string;
  file: string;
  maxDepth: number;
  latencyMs: number;
  rates: typeof RATES;
  googleDailyQuota: number;
  /** Where the stacks kept their local state (absent in runs before it was recorded: `.wrangler`, disk). */
  state?: { dir: string; fs: "tmpfs" | "disk" };
  sides: ProductionSide[];
  errors: string[];
}

async function side(mode: ProductionSide["mode"], csv: string, signal: AbortSignal): Promise<ProductionSide> {
  const perRequest: Record<string, string> =
    mode === "grouped" ? {} : { OPENLIBRARY_AUTHORS_PER_REQUEST: "1", OPENLIBRARY_ISBNS_PER_REQUEST: "1" };
  return withStack(
    {
      name: `production-${mode}`,
      upstream: {
        latencyMs: LATENCY_MS,
        openLibraryRateLimitPerSecond: RATES.openlibrary,
        googleBooksRateLimitPerSecond: RATES.googlebooks,
        googleDailyQuota: GOOGLE_DAILY_QUOTA,
      },
      vars: {
        OPENLIBRARY_RATE_PER_SECOND: String(RATES.openlibrary),
        GOOGLE_BOOKS_RATE_PER_SECOND: String(RATES.googlebooks),
        GOOGLE_BOOKS_DAILY_QUOTA: String(GOOGLE_DAILY_QUOTA),
        GOOGLE_BOOKS_ENABLED: "true",
        ...perRequest,
      },
      sweepEverySeconds: 30,
    },
    signal,
    async (stack) => {
      const arrivals: Record<"openlibrary" | "googlebooks", number[]> = { openlibrary: [], googlebooks: [] };
      const original = stack.fake.fetch.bind(stack.fake);
      stack.fake.fetch = (input, init) => {
        const url = input instanceof Request ? input.url : String(input);
        const path = new URL(url, "http://stand-in").pathname;
        const at = performance.timeOrigin + performance.now();
        if (path === "/search.json") arrivals.openlibrary.push(at);
        else if (path === "/books/v1/volumes") arrivals.googlebooks.push(at);
        return original(input, init);
      };
      info(`  ${mode}: warming ${PRODUCTION_FILE.split("/").pop()} at maxDepth ${MAX_DEPTH} …`);
      const started = performance.now();
      const startedAt = performance.timeOrigin + started;
      const upload = await stack.api.upload(csv, MAX_DEPTH, signal, 120_000);
      const done = await waitForJob(stack.api, String(upload.body.jobId), signal, { pollMs: 500 });
      const seconds = (done.finishedAt - started) / 1000;
      const p = done.progress;
      const timeline = timelineOf(
        startedAt,
        upload.msToResponse,
        arrivals.openlibrary,
        arrivals.googlebooks,
        seconds,
      );
      const stats = stack.fake.stats();
      const requests = {
        openlibrary: stats.byPath["/search.json"] ?? 0,
        googlebooks: stats.byPath["/books/v1/volumes"] ?? 0,
      };
      const authors = p.byKind.author.total;
      const items = p.counts.total;
      const per = (n: number, d: number) => (d > 0 ? round(n / d, 3) : 0);
      const known = new Set(EXPORT_ISBNS);
      const result: ProductionSide = {
        mode,
        status: p.status,
        seconds: round(seconds, 1),
        authors,
        isbnItems: p.byKind.isbn.total,
        isbnsWarm: p.byKind.isbn.warm,
        isbnCoverage: per(p.byKind.isbn.warm, Math.min(p.byKind.isbn.total, known.size)),
        worksCached: p.worksCached,
        requests,
        perAuthor: {
          openlibrary: per(requests.openlibrary, authors),
          googlebooks: per(requests.googlebooks, authors),
        },
        perItem: {
          openlibrary: per(requests.openlibrary, items),
          googlebooks: per(requests.googlebooks, items),
        },
        maxInAnyOneSecond: {
          openlibrary: slidingWindowMax(arrivals.openlibrary, 1000),
          googlebooks: slidingWindowMax(arrivals.googlebooks, 1000),
        },
        responses429: stats.byStatus["429"] ?? 0,
        counts: p.counts,
        quotas: p.quotas ?? null,
        timeline,
      };
      info(
        `  ${mode}: ${p.status} in ${result.seconds} s · OL ${requests.openlibrary} (${result.perAuthor.openlibrary}/author) · ` +
          `GB ${requests.googlebooks} (${result.perAuthor.googlebooks}/author) · ISBN ${result.isbnsWarm}/${result.isbnItems} · ` +
          `${result.worksCached} works · max/s OL ${result.maxInAnyOneSecond.openlibrary} GB ${result.maxInAnyOneSecond.googlebooks} · 429s ${result.responses429}`,
      );
      info(`  ${mode}: timeline (s from upload) ${JSON.stringify(timeline)}`);
      return result;
    },
  );
}

function minGap(arrivals: readonly number[]): number | null {
  const sorted = [...arrivals].sort((a, b) => a - b);
  let min: number | null = null;
  for (let i = 1; i < sorted.length; i++) {
    const gap = (sorted[i] as number) - (sorted[i - 1] as number);
    if (min === null || gap < min) min = gap;
  }
  return min === null ? null : round(min, 1);
}

function timelineOf(
  startedAt: number,
  msToAccepted: number,
  arrivals: readonly number[],
  google: readonly number[],
  seconds: number,
): Timeline {
  const since = (at: number) => round((at - startedAt) / 1000, 2);
  const first = arrivals[0];
  const last = arrivals.at(-1);
  return {
    accepted: round(msToAccepted / 1000, 2),
    firstRequest: first === undefined ? null : since(first),
    lastRequest: last === undefined ? null : since(last),
    meanRequestGap:
      first === undefined || last === undefined || arrivals.length < 2
        ? null
        : round((last - first) / 1000 / (arrivals.length - 1), 3),
    minGapMs: { openlibrary: minGap(arrivals), googlebooks: minGap(google) },
    completed: round(seconds, 1),
  };
}

/** Both sides, each on its own fresh stack; writes bench/production-politeness.json. */
export async function runProductionPoliteness(
  runSide: <T>(what: string, seconds: number, fn: (signal: AbortSignal) => Promise<T>) => Promise<T>,
  opts: { quick: boolean },
): Promise<ProductionResult> {
  const csv = readFileSync(PRODUCTION_FILE, "utf8");
  const result: ProductionResult = {
    generatedAt: new Date().toISOString(),
    file: "test/fixtures/goodreads-2025.csv",
    maxDepth: MAX_DEPTH,
    latencyMs: LATENCY_MS,
    rates: RATES,
    googleDailyQuota: GOOGLE_DAILY_QUOTA,
    state: stateOfStacks(),
    sides: [],
    errors: [],
  };
  const modes: ProductionSide["mode"][] = opts.quick ? ["grouped"] : ["grouped", "one-per-request"];
  for (const mode of modes) {
    try {
      result.sides.push(
        await runSide(`production politeness (${mode})`, mode === "grouped" ? 300 : 900, (s) =>
          side(mode, csv, s),
        ),
      );
    } catch (error) {
      result.errors.push(`${mode}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  if (!opts.quick) writeFileSync(PRODUCTION_RESULTS, `${JSON.stringify(result, null, 2)}\n`);
  return result;
}

/** Terminal lines: each side and the targets it meets or misses. */
export function formatProduction(r: ProductionResult): string {
  const t = PRODUCTION_TARGETS;
  const lines = [
    "production politeness (goodreads-2025.csv, maxDepth 2, OL 3/s, GB 1/s + 1,000/day, 300 ms)",
  ];
  for (const s of r.sides) {
    lines.push(
      `  ${s.mode.padEnd(16)} ${s.status} in ${s.seconds} s · OL ${s.requests.openlibrary} req (${s.perAuthor.openlibrary}/author) · ` +
        `GB ${s.requests.googlebooks} req (${s.perAuthor.googlebooks}/author) · ISBN coverage ${(s.isbnCoverage * 100).toFixed(1)} % · ` +
        `${s.worksCached} works · max in 1 s: OL ${s.maxInAnyOneSecond.openlibrary}, GB ${s.maxInAnyOneSecond.googlebooks} · 429s ${s.responses429}`,
    );
  }
  const grouped = r.sides.find((s) => s.mode === "grouped");
  if (grouped) {
    const check = (ok: boolean, text: string) => lines.push(`  ${ok ? "met   " : "MISSED"} ${text}`);
    check(grouped.seconds <= t.seconds, `time to completed ${grouped.seconds} s ≤ ${t.seconds} s`);
    check(
      grouped.perAuthor.openlibrary <= t.openLibraryPerAuthor,
      `Open Library ${grouped.perAuthor.openlibrary} ≤ ${t.openLibraryPerAuthor} req/author`,
    );
    check(
      grouped.perAuthor.googlebooks <= t.googlePerAuthor,
      `Google Books ${grouped.perAuthor.googlebooks} ≤ ${t.googlePerAuthor} req/author`,
    );
    check(
      grouped.isbnCoverage >= t.isbnCoverage,
      `ISBN coverage ${(grouped.isbnCoverage * 100).toFixed(1)} % ≥ 95 %`,
    );
    check(
      grouped.maxInAnyOneSecond.openlibrary <= r.rates.openlibrary &&
        grouped.maxInAnyOneSecond.googlebooks <= r.rates.googlebooks,
      `never above R in any second (OL ${grouped.maxInAnyOneSecond.openlibrary} ≤ 3, GB ${grouped.maxInAnyOneSecond.googlebooks} ≤ 1)`,
    );
    check(grouped.responses429 === 0, `${grouped.responses429} × 429`);
  }
  for (const e of r.errors) lines.push(`  ERROR ${e}`);
  return lines.join("\n");
}

/** The last full run's numbers (bench/production-politeness.json), for re-rendering BENCHMARKS.md. */
export function savedProduction(): ProductionResult | undefined {
  return readSavedJson<ProductionResult>(PRODUCTION_RESULTS);
}

/** The BENCHMARKS.md section: both sides in one table, then the targets. */
export function renderProductionMarkdown(r: ProductionResult | undefined): string {
  const head = "## 6. Production politeness\n";
  if (!r || r.sides.length === 0) {
    return `${head}\nNot measured in this run (\`npm run bench -- --only production\`).${r?.errors.length ? ` Errors: ${r.errors.join("; ")}` : ""}\n`;
  }
  const row = (label: string, f: (s: ProductionSide) => string) =>
    `| ${label} | ${r.sides.map(f).join(" | ")} |`;
  const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
  const t = PRODUCTION_TARGETS;
  return `${head}
The bundled Goodreads export (\`${r.file}\`, 358 books) at maxDepth ${r.maxDepth}, against the stand-in at
production rates: Open Library ${r.rates.openlibrary}/s, Google Books ${r.rates.googlebooks}/s with a
${r.googleDailyQuota.toLocaleString("en-US")}-a-day quota, ${r.latencyMs} ms latency on every answer; the stand-in
enforces each rate itself (a 429 past it) and Google's daily quota. Kindling's limiter is set to the same
rates. Two sides on the same run, each on a fresh stack: **grouped** (the default: up to 10 authors per
OR-combined Open Library query, up to 25 ISBNs per lookup, within a consumer batch of 10 messages) and
**one item per request** (\`OPENLIBRARY_AUTHORS_PER_REQUEST=1\`, \`OPENLIBRARY_ISBNS_PER_REQUEST=1\`). Google
Books is the complement in both (\`GOOGLE_BOOKS_ROLE=complement\`). Measured on ${r.generatedAt.slice(0, 10)}
(\`bench/production-politeness.json\`), each stack's local state (D1, KV, R2 files) in ${
    r.state ? `\`${r.state.dir}\` (${r.state.fs})` : "`.wrangler` (disk)"
  }.

| | ${r.sides.map((s) => s.mode).join(" | ")} |
|---|${r.sides.map(() => "---").join("|")}|
${row("status", (s) => s.status)}
${row("time to completed", (s) => `${s.seconds} s`)}
${row("authors · ISBN items", (s) => `${s.authors} · ${s.isbnItems}`)}
${row("Open Library requests (per author · per item)", (s) => `${s.requests.openlibrary} (${s.perAuthor.openlibrary} · ${s.perItem.openlibrary})`)}
${row("Google Books requests (per author · per item)", (s) => `${s.requests.googlebooks} (${s.perAuthor.googlebooks} · ${s.perItem.googlebooks})`)}
${row("ISBN coverage (warm by ISBN ÷ known)", (s) => `${s.isbnsWarm} / ${s.isbnItems} = ${pct(s.isbnCoverage)}`)}
${row("works cached", (s) => String(s.worksCached))}
${row("most requests in any 1 s (OL · GB)", (s) => `${s.maxInAnyOneSecond.openlibrary} · ${s.maxInAnyOneSecond.googlebooks}`)}
${row("429 answers", (s) => String(s.responses429))}
${row("shortest gap between arrivals (OL · GB)", (s) => (s.timeline ? `${s.timeline.minGapMs.openlibrary ?? "–"} ms · ${s.timeline.minGapMs.googlebooks ?? "–"} ms` : "not recorded"))}
${row("first · last Open Library request (s after upload)", (s) => (s.timeline ? `${s.timeline.firstRequest ?? "–"} · ${s.timeline.lastRequest ?? "–"}` : "not recorded"))}

Targets (grouped side): ≤ ${t.seconds} s; Open Library ≤ ${t.openLibraryPerAuthor} requests per author; Google ≤
${t.googlePerAuthor}; ISBN coverage ≥ 95 %; never above R in any second; 0 × 429.

${findings(r).join("\n")}
${r.errors.length ? `\nErrors: ${r.errors.join("; ")}\n` : ""}`;
}

/** What each side's numbers say, misses first, with the reason seen in the run. */
function findings(r: ProductionResult): string[] {
  const out: string[] = [];
  const t = PRODUCTION_TARGETS;
  const grouped = r.sides.find((s) => s.mode === "grouped");
  const single = r.sides.find((s) => s.mode === "one-per-request");
  if (grouped) {
    const floor = Math.ceil(grouped.requests.openlibrary / r.rates.openlibrary);
    if (grouped.seconds > t.seconds) {
      out.push(
        `- **Time to completed missed** (${grouped.seconds} s > ${t.seconds} s). The requests alone need ${floor} s at ` +
          `${r.rates.openlibrary}/s (${grouped.requests.openlibrary} ÷ ${r.rates.openlibrary}); the rest is the local ` +
          "pipeline: miniflare delivers one batch at a time per queue (the author and ISBN queues run side by side), " +
          "and each author batch waits for its grouped request (slot + 300 ms), then writes its works to the simulated " +
          `KV (~0.8 ms a write measured, two keys for each of ${grouped.worksCached.toLocaleString("en-US")} works), ` +
          "with nothing overlapping the two; a batch that needs Google waits for one of its 1/s slots, which both queues " +
          "share. In production several consumer invocations run at once, so the local figure should be an upper bound " +
          "(not measured there).",
      );
    } else out.push(`- Time to completed met: ${grouped.seconds} s (request floor ${floor} s).`);
  }
  if (grouped && single) {
    out.push(
      `- Grouping cut Open Library requests ${round(single.requests.openlibrary / Math.max(1, grouped.requests.openlibrary), 1)}× ` +
        `(${single.requests.openlibrary} → ${grouped.requests.openlibrary}) and time ${round(single.seconds / Math.max(1, grouped.seconds), 1)}× ` +
        `(${single.seconds} s → ${grouped.seconds} s); works cached: ${single.worksCached} one per request, ${grouped.worksCached} grouped` +
        (single.worksCached === grouped.worksCached
          ? " (the same)."
          : ` (${Math.abs(single.worksCached - grouped.worksCached)} apart; not investigated: a candidate is that which works fill an author's MAX_WORKS_PER_AUTHOR cap can follow the order batches ran in).`),
    );
  }
  for (const s of r.sides) {
    if (
      s.maxInAnyOneSecond.openlibrary > r.rates.openlibrary ||
      s.maxInAnyOneSecond.googlebooks > r.rates.googlebooks ||
      s.responses429 > 0
    ) {
      out.push(
        `- **${s.mode}: above R** (most in any 1 s: Open Library ${s.maxInAnyOneSecond.openlibrary}, Google ` +
          `${s.maxInAnyOneSecond.googlebooks}; ${s.responses429} × 429 from the stand-in). The limiter spaces grants ` +
          "ceil(1025/R) ms apart, allowing 25 ms between a grant and the request's arrival; on this shared 2-core " +
          "machine a delayed request then on-time ones can still land R + 1 within a second. The job still completed with every task done (a 429 is retried after its Retry-After).",
      );
    }
  }
  return out;
}
