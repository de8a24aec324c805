import { z } from "zod";
import { cacheKeys, TTL_SECONDS } from "../cache/keys";
import { type Cache, createCache } from "../cache/kv";
import type { Config } from "../config";
import { readJobSnapshot } from "../db/lifecycle/job-snapshot";
import type { StageEnd } from "../db/lifecycle/stage-transitions";
import type { JobRow } from "../db/types";
import { getWorksByAuthor } from "../db/works";
import { isbnOfItemKey } from "../ingest/isbn";
import { mapWithConcurrency } from "../lib/budget";
import type { Work } from "../sources/types";
import { markerFor } from "../warm/marker";
import { artifactKey, putJsonArtifact } from "./artifacts";
import { ARTIFACT_NAMES, type Check, type VerifyReport } from "./stages";

const COUNTER_OF = {
  done: "done_count",
  skipped: "skipped_count",
  failed: "failed_count",
  dead: "dead_count",
  cancelled: "cancelled_count",
} as const satisfies Record<string, keyof JobRow>;

/** ISBN keys checked per sampled author (the list and the marker are always checked). */
const ISBNS_PER_ITEM = 3;

/** The D1 invariants, exactly: every one is a count compared with another count. */
export async function checkInvariants(env: Env, jobId: string): Promise<Check[] | null> {
  const snapshot = await readJobSnapshot(env.DB, jobId);
  if (!snapshot) return null;
  const { job, byStatus, total } = snapshot;
  const counters = Object.entries(COUNTER_OF).map(([status, column]) => ({
    status,
    rows: byStatus[status] ?? 0,
    counter: Number(job[column]),
  }));
  const wrong = counters.filter((c) => c.rows !== c.counter);
  const orphan = await env.DB.prepare(
    `SELECT COUNT(*) AS n FROM tasks AS t WHERE t.job_id = ?1 AND t.status = 'done' AND t.kind = 'author'
       AND COALESCE(t.works_count, 0) > 0
       AND NOT EXISTS (SELECT 1 FROM author_works AS aw WHERE aw.author_key = t.author_key)`,
  )
    .bind(jobId)
    .first<{ n: number }>();
  const missingWorks = Number(orphan?.n ?? 0);
  return [
    {
      name: "state_counts_sum_to_total",
      ok: total === job.total_tasks,
      detail: `task rows ${total}, job.total_tasks ${job.total_tasks}`,
    },
    {
      name: "counters_equal_task_rows",
      ok: wrong.length === 0,
      detail:
        wrong.length === 0
          ? counters.map((c) => `${c.status} ${c.rows}`).join(", ")
          : wrong.map((c) => `${c.status}: rows ${c.rows} ≠ counter ${c.counter}`).join(", "),
    },
    {
      name: "done_authors_have_works_rows",
      ok: missingWorks === 0,
      detail: `${missingWorks} done authors with works have no author_works rows`,
    },
  ];
}

const sampleRow = z.object({
  author_key: z.string(),
  author_name: z.string(),
  kind: z.enum(["author", "isbn"]),
  works_count: z.coerce.number(),
  depth: z.coerce.number(),
  max_depth: z.coerce.number(),
});
type Sampled = z.infer<typeof sampleRow>;

/** The keys a done item must have in KV. */
function missingKeys(cache: Cache, item: Sampled): Promise<string[]> {
  return item.kind === "isbn" ? missingIsbnKeys(cache, item) : missingAuthorKeys(cache, item);
}

/**
 * A done ISBN item that found its edition must have it under `book:isbn:<its ISBN-13>`; one no source knew
 * (works_count 0) has nothing to check.
 */
async function missingIsbnKeys(cache: Cache, item: Sampled): Promise<string[]> {
  const isbn13 = isbnOfItemKey(item.author_key);
  if (!isbn13 || item.works_count === 0) return [];
  const key = cacheKeys.bookByIsbn(isbn13);
  return (await cache.get<unknown>(key)) === null ? [key] : [];
}

/** The keys a done author must have in KV: its works list, its marker, and (some of) its ISBN keys. */
async function missingAuthorKeys(cache: Cache, item: Sampled): Promise<string[]> {
  const listKey = cacheKeys.authorWorks(item.author_name);
  const markerKey = cacheKeys.processedMarker(item.author_name);
  const [list, marker] = await Promise.all([
    cache.get<{ works?: Work[] }>(listKey),
    cache.get<unknown>(markerKey),
  ]);
  const missing = [...(list ? [] : [listKey]), ...(marker ? [] : [markerKey])];
  const isbnKeys = (list?.works ?? [])
    .flatMap((w) => (w.isbn13 ? [cacheKeys.bookByIsbn(w.isbn13)] : []))
    .slice(0, ISBNS_PER_ITEM);
  const found = await Promise.all(isbnKeys.map((k) => cache.get<unknown>(k)));
  return [...missing, ...isbnKeys.filter((_, i) => found[i] === null)];
}

/** Re-warms one item's cache entries from the durable copy in D1 (no upstream request). */
async function rewarmFromD1(env: Env, cache: Cache, jobId: string, item: Sampled): Promise<void> {
  const works = await getWorksByAuthor(env.DB, item.author_key);
  if (item.kind === "isbn") {
    // The edition goes back under the reader's ISBN (the item's key), as the warmer wrote it.
    const isbn13 = isbnOfItemKey(item.author_key);
    const work = works[0];
    if (isbn13 && work) await cache.set(cacheKeys.bookByIsbn(isbn13), work, TTL_SECONDS.bookByIsbn);
    return;
  }
  const now = Date.now();
  await Promise.all([
    ...works.flatMap((w) =>
      w.isbn13 ? [cache.set(cacheKeys.bookByIsbn(w.isbn13), w, TTL_SECONDS.bookByIsbn)] : [],
    ),
    cache.set(
      cacheKeys.authorWorks(item.author_name),
      { author: item.author_name, works, updatedAt: new Date(now).toISOString() },
      TTL_SECONDS.authorWorks,
    ),
    cache.set(
      cacheKeys.processedMarker(item.author_name),
      markerFor(
        {
          v: 1,
          jobId,
          authorKey: item.author_key,
          authorName: item.author_name,
          depth: item.depth,
          maxDepth: item.max_depth,
          gen: 0,
        },
        works.length,
        now,
      ),
      TTL_SECONDS.processedMarker,
    ),
  ]);
}

/**
 * verify: the D1 invariants, then the cache for a sample of done items (up to VERIFY_SAMPLE_SIZE authors and
 * as many ISBN items, so a job of mostly one kind still has the other checked). What is missing is re-warmed
 * once (from D1's works, the durable copy) and checked again; what is still missing is reported. The stage
 * fails only on a broken invariant, naming it.
 */
export async function runVerify(env: Env, jobId: string, config: Config): Promise<StageEnd | null> {
  const invariants = await checkInvariants(env, jobId);
  if (!invariants) return null;
  const sampled = await env.DB.batch(
    (["author", "isbn"] as const).map((kind) =>
      env.DB.prepare(
        `SELECT t.author_key, t.author_name, t.kind, COALESCE(t.works_count, 0) AS works_count, t.depth,
           j.max_depth FROM tasks AS t JOIN jobs AS j ON j.id = t.job_id
         WHERE t.job_id = ?1 AND t.status = 'done' AND t.kind = ?3 ORDER BY t.author_key LIMIT ?2`,
      ).bind(jobId, config.VERIFY_SAMPLE_SIZE, kind),
    ),
  );
  const sample = sampled.flatMap((r) => r.results.map((row) => sampleRow.parse(row)));
  const cache = createCache(env.CACHE);
  const before = await mapWithConcurrency(sample, 20, async (item) => ({
    item,
    missing: await missingKeys(cache, item),
  }));
  const missing = before.filter((b) => b.missing.length > 0);
  await mapWithConcurrency(missing, 10, (m) => rewarmFromD1(env, cache, jobId, m.item));
  const after = await mapWithConcurrency(missing, 20, async ({ item }) => ({
    item,
    missing: await missingKeys(cache, item),
  }));
  const stillMissing = after
    .filter((a) => a.missing.length > 0)
    .map((a) => ({ item: a.item.author_key, keys: a.missing }));
  const report: VerifyReport = {
    kind: "verify",
    jobId,
    invariants,
    cache: {
      sampleSize: config.VERIFY_SAMPLE_SIZE,
      checked: sample.length,
      missingBefore: missing.length,
      rewarmed: missing.length,
      stillMissing,
    },
  };
  const artifact = await putJsonArtifact(env.ARTIFACTS, artifactKey(jobId, ARTIFACT_NAMES.verify), report);
  const counts = {
    invariantsFailed: invariants.filter((c) => !c.ok).length,
    sampled: sample.length,
    missingBefore: missing.length,
    stillMissing: stillMissing.length,
  };
  const broken = invariants.find((c) => !c.ok);
  if (broken) return { status: "FAILED", message: `${broken.name}: ${broken.detail}`, counts, artifact };
  return { status: "SUCCESS", counts, artifact };
}
