/**
 * The `refresh` scenario (issue #13 item 4): warm N authors, change a share of their works in the stand-in,
 * run the scheduled refresh (its cron, fired as local dev fires crons) and compare the refresh's KV writes
 * with the warm's. The warm of a cold cache writes every entry of those authors once (works by ISBN and
 * title, lists, markers): exactly what a full re-warm without the diff writes, so it is the baseline.
 */
import { hashFraction, worksForAuthor } from "../../test/support/upstream/catalogue.ts";
import { generateAuthorList, numberedAuthor } from "./csv.ts";
import { type Counters, info, round, waitForJob, withStack } from "./harness.ts";

export interface RefreshResult {
  authors: number;
  /** Works of those authors (at most MAX_WORKS_PER_AUTHOR each) and how many the stand-in changed. */
  works: number;
  changedWorks: number;
  changedFraction: number;
  warm: { seconds: number; kvWrites: number; kvReads: number; upstreamRequests: number; tasksDone: number };
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
  };
  /** refresh KV writes ÷ warm KV writes (the target: ≤ 0.15). */
  kvWriteRatio: number;
  /** What the refresh would write without the diff: every work's entries again, lists and markers. */
  refreshWithoutDiffKvWrites: number;
}

const REFRESH_CRON = "7 * * * *";
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

export async function runRefresh(
  authors: number,
  fraction: number,
  signal: AbortSignal,
): Promise<RefreshResult> {
  const prefix = "Refresh Author";
  const file = generateAuthorList(prefix, authors);
  const names = Array.from(
    { length: authors },
    (_, i) => numberedAuthor(prefix, i, Math.max(4, String(authors).length)).name,
  );
  const figures = catalogueFigures(names, fraction);
  return withStack(
    {
      name: "refresh",
      vars: {
        OPENLIBRARY_RATE_PER_SECOND: "0",
        GOOGLE_BOOKS_RATE_PER_SECOND: "0",
        // Open Library only: a work's merged record then depends on the stand-in's catalogue alone.
        GOOGLE_BOOKS_ENABLED: "false",
        // Everything the warm just wrote (lists expire in 24 h) is inside the horizon, and fits one run.
        REFRESH_HORIZON_HOURS: "25",
        REFRESH_MAX_ITEMS: String(authors),
      },
      sweepEverySeconds: 30,
    },
    signal,
    async (stack) => {
      await stack.api.resetCounters(signal);
      info(`  warming ${authors} authors (maxDepth 0) …`);
      let started = performance.now();
      const upload = await stack.api.upload(file.csv, 0, signal, 120_000);
      const warmed = await waitForJob(stack.api, String(upload.body.jobId), signal, { pollMs: 500 });
      const warmSeconds = (warmed.finishedAt - started) / 1000;
      const warmCounters = await settled(stack.api, signal);
      const warmUpstream = stack.fake.stats().total;

      stack.fake.configure({ editedWorkFraction: fraction });
      await stack.api.resetCounters(signal);
      info(`  stand-in changed ${figures.changed} of ${figures.works} works; firing the refresh cron …`);
      started = performance.now();
      const fired = await fetch(
        `${stack.url}/cdn-cgi/local/scheduled?cron=${encodeURIComponent(REFRESH_CRON)}`,
        {
          signal: AbortSignal.any([signal, AbortSignal.timeout(60_000)]),
        },
      );
      await fired.body?.cancel();
      const listed = await fetch(`${stack.url}/api/jobs?limit=10`, {
        headers: { Authorization: `Bearer ${stack.token}` },
        signal,
      });
      const { jobs } = (await listed.json()) as { jobs: { jobId: string; kind: string; priority: string }[] };
      const job = jobs.find((j) => j.kind === "refresh");
      if (!job) throw new Error("the refresh cron created no refresh job");
      const refreshed = await waitForJob(stack.api, job.jobId, signal, { pollMs: 500 });
      const refreshSeconds = (refreshed.finishedAt - started) / 1000;
      // Counters were reset just before the cron: what they hold now is the refresh's (and its polls').
      const raw = await settled(stack.api, signal);
      const result: RefreshResult = {
        authors,
        works: figures.works,
        changedWorks: figures.changed,
        changedFraction: round(figures.changed / Math.max(1, figures.works), 4),
        warm: {
          seconds: round(warmSeconds, 1),
          kvWrites: warmCounters.kvWrites,
          kvReads: warmCounters.kvReads,
          upstreamRequests: warmUpstream,
          tasksDone: warmed.progress.counts.done,
        },
        refresh: {
          jobId: job.jobId,
          kind: job.kind,
          priority: job.priority,
          tasks: refreshed.progress.counts.total,
          tasksDone: refreshed.progress.counts.done,
          seconds: round(refreshSeconds, 1),
          kvWrites: raw.kvWrites,
          kvReads: raw.kvReads,
          d1RowsWritten: raw.d1RowsWritten,
          upstreamRequests: stack.fake.stats().total - warmUpstream,
        },
        kvWriteRatio: round(raw.kvWrites / Math.max(1, warmCounters.kvWrites), 4),
        refreshWithoutDiffKvWrites: figures.entries,
      };
      info(
        `  refresh: ${result.refresh.tasksDone}/${result.refresh.tasks} done in ${result.refresh.seconds} s · ` +
          `KV writes ${result.refresh.kvWrites} vs warm ${result.warm.kvWrites} ` +
          `(${(result.kvWriteRatio * 100).toFixed(1)} %)`,
      );
      return result;
    },
  );
}

export function formatRefresh(r: RefreshResult): string {
  return [
    `refresh: ${r.authors} authors, ${r.works} works, ${r.changedWorks} changed in the stand-in (${(r.changedFraction * 100).toFixed(1)} %)`,
    `  warm (cold cache = full re-warm): ${r.warm.kvWrites} KV writes, ${r.warm.upstreamRequests} upstream requests, ${r.warm.seconds} s`,
    `  refresh job ${r.refresh.jobId} (${r.refresh.kind}, ${r.refresh.priority}): ${r.refresh.tasksDone}/${r.refresh.tasks} done, ` +
      `${r.refresh.kvWrites} KV writes, ${r.refresh.kvReads} KV reads, ${r.refresh.upstreamRequests} upstream requests, ${r.refresh.seconds} s`,
    `  KV writes refresh ÷ full re-warm: ${(r.kvWriteRatio * 100).toFixed(1)} % (target ≤ 15 %)`,
  ].join("\n");
}

/** The figure: the refresh's KV writes at most 15 % of a full re-warm's. */
export function refreshTarget(r: RefreshResult | undefined) {
  const target = {
    id: "refresh.kv_writes",
    scenario: "refresh" as const,
    what: r
      ? `Refresh ${r.authors} authors after ${(r.changedFraction * 100).toFixed(1)} % of their works changed: KV writes vs a full re-warm`
      : "Refresh after 10 % of the works changed: KV writes vs a full re-warm",
    target: "≤ 15 %",
    value: r ? round(r.kvWriteRatio * 100, 1) : null,
    display: r ? `${(r.kvWriteRatio * 100).toFixed(1)} % (${r.refresh.kvWrites} of ${r.warm.kvWrites})` : "—",
    met: r ? r.kvWriteRatio <= 0.15 : null,
  };
  if (target.met === false && r) {
    return {
      ...target,
      why:
        `Each refreshed author still costs two puts whatever changed: its works list (the entry that expires; ` +
        `a put is KV's only way to renew a TTL) and its processed marker (lastRefreshedAt). Those are ` +
        `${2 * r.authors} of the ${r.refresh.kvWrites} writes; the rest are the changed works' ISBN and title entries.`,
    };
  }
  return target;
}
