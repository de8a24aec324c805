import { workHash } from "../../cache/content-hash";
import { cacheKeys, TTL_SECONDS } from "../../cache/keys";
import type { Cache } from "../../cache/kv";
import { isbnOfItemKey } from "../../ingest/isbn";
import type { Budget } from "../../lib/budget";
import { createLimiter } from "../../lib/budget";
import { type RefreshDiff, refreshDiff } from "../../refresh/diff";
import type { Work } from "../../sources/types";
import { taskId, type WarmMessage } from "../messages";
import type { Delivery } from "./intake";
import { backoff, DEFER_DELAY_SECONDS, type Done, type Outcome, type WarmDeps } from "./types";
import { warmAuthors } from "./warm-authors";
import { warmIsbns } from "./warm-isbns";

/**
 * Warms each delivery and caches its works. Each item's works go to KV as soon as it is fetched, while
 * other authors still wait on the providers, within what is left of the invocation's KV allowance (the rest
 * are deferred, not failed). An author whose writes did not all land is not done.
 */
export async function warmAndCache(
  work: readonly Delivery[],
  ctx: { cache: Cache; subrequests: Budget; kvOperations: Budget; deps: WarmDeps; db?: D1Database },
): Promise<Outcome[]> {
  const { cache, deps } = ctx;
  // Refresh items' stored work hashes, read while the providers are asked (null: the batch has none).
  const diff = deps.config.REFRESH_DIFF ? refreshDiff(ctx.db, work) : null;
  const admission = new KvAdmission(ctx.kvOperations, work.length);
  const written = new Set<string>();
  const kvWriteSlot = createLimiter(deps.config.KV_WRITE_CONCURRENCY);
  const attemptOf = new Map(work.map((d) => [taskId(d.body), d.message.attempts]));
  const cacheOutcome = async (outcome: Outcome): Promise<Outcome> => {
    admission.markerRead();
    if (outcome.kind !== "done") return outcome;
    const { body } = outcome;
    const unchanged = await unchangedWorks(diff, outcome);
    const units = kvWritesFor(outcome, unchanged);
    if (!admission.admit(units)) {
      return { kind: "defer", body, delaySeconds: DEFER_DELAY_SECONDS, reason: "KV budget reached" };
    }
    const { puts, failed } = await writeItemToCache(cache, outcome, written, kvWriteSlot, unchanged, () =>
      admission.settle(1),
    );
    admission.settle(units - 1 - puts); // one unit stays promised for the processed marker
    if (failed === 0) return outcome;
    // Works that are not in KV are not cached: the item is not done and gets no marker.
    admission.settle(1);
    return cacheWriteFailed(body, attemptOf.get(taskId(body)) ?? 1, failed, cache, deps);
  };
  // Authors and ISBN items each a group per request; a group's items are cached as soon as it answers.
  const authors = work.filter((d) => isbnOfItemKey(d.body.authorKey) === null);
  const isbns = work.filter((d) => isbnOfItemKey(d.body.authorKey) !== null);
  const [byAuthor, byIsbn] = await Promise.all([
    authors.length === 0 ? [] : warmAuthors(authors, cache, ctx.subrequests, deps, cacheOutcome),
    isbns.length === 0 ? [] : warmIsbns(isbns, cache, ctx.subrequests, deps, cacheOutcome),
  ]);
  return [...byAuthor, ...byIsbn];
}

/**
 * Writes one item's works (by ISBN and by title) and, for an author, its list; returns how many puts it
 * made and how many of them failed (KV error, breaker open or budget: the value is not in KV either way).
 * A key another item of the batch already wrote is skipped: two puts to one key within a second are
 * throttled by KV, and one write per key is enough. `beforePut` runs just before each put takes its unit.
 * An ISBN item writes its edition (`book:isbn:` + the reader's ISBN) and its title key, no author list.
 * A refresh skips the ISBN and title entries of `unchanged` works (same content hash as stored); the
 * item's own entry (the author's list, the ISBN item's edition) is always written: it is what expires.
 */
async function writeItemToCache(
  cache: Cache,
  { body, works }: Done,
  written: Set<string>,
  kvWriteSlot: ReturnType<typeof createLimiter>,
  unchanged: ReadonlySet<Work>,
  beforePut: () => void,
): Promise<{ puts: number; failed: number }> {
  const writes: { key: string; value: unknown; ttl: number }[] = [];
  const add = (key: string, value: unknown, ttl: number) => {
    if (written.has(key)) return;
    written.add(key);
    writes.push({ key, value, ttl });
  };
  const isbnItem = isbnOfItemKey(body.authorKey) !== null;
  for (const work of works) {
    if (unchanged.has(work)) {
      // An ISBN item's edition is its own entry: renewed even when unchanged (a put is KV's only renewal).
      if (isbnItem && work.isbn13) add(cacheKeys.bookByIsbn(work.isbn13), work, TTL_SECONDS.bookByIsbn);
      continue;
    }
    if (work.isbn13) add(cacheKeys.bookByIsbn(work.isbn13), work, TTL_SECONDS.bookByIsbn);
    const titleAuthor = work.authors[0] ?? (isbnItem ? undefined : body.authorName);
    if (titleAuthor !== undefined && work.title)
      add(cacheKeys.bookByTitle(work.title, titleAuthor), work, TTL_SECONDS.bookByTitle);
  }
  if (!isbnItem) {
    add(
      cacheKeys.authorWorks(body.authorName),
      { author: body.authorName, works, updatedAt: new Date().toISOString() },
      TTL_SECONDS.authorWorks,
    );
  }
  const results = await Promise.all(
    writes.map((w) =>
      kvWriteSlot(() => {
        beforePut();
        return cache.set(w.key, w.value, w.ttl);
      }),
    ),
  );
  return { puts: writes.length, failed: results.filter((ok) => !ok).length };
}

/**
 * An author whose KV writes did not all land: deferred while the KV breaker is open (KV's outage is not
 * the author's fault, so its allowance is kept), retried with backoff when KV refused the writes.
 */
function cacheWriteFailed(
  body: WarmMessage,
  attempt: number,
  failed: number,
  cache: Cache,
  deps: WarmDeps,
): Outcome {
  const breaker = cache.breaker;
  if (breaker.state === "open" && breaker.openUntil !== null) {
    const delaySeconds = Math.max(DEFER_DELAY_SECONDS, Math.ceil((breaker.openUntil - deps.now()) / 1000));
    return { kind: "defer", body, delaySeconds, reason: `KV unavailable (${failed} writes not made)` };
  }
  return {
    kind: "retry",
    body,
    code: "cache_write_failed",
    message: `${failed} KV writes failed; the author's works are not cached`,
    delaySeconds: backoff(deps.config, attempt, undefined, deps.random),
    attempt,
  };
}

/** KV writes an item's result will need: ISBN and title keys per work, an author's list, the marker. */
function kvWritesFor(outcome: Done, unchanged: ReadonlySet<Work>): number {
  const list = isbnOfItemKey(outcome.body.authorKey) === null ? 1 : 0;
  return outcome.works.reduce((n, w) => n + (unchanged.has(w) ? 1 : w.isbn13 ? 2 : 1), 0) + list + 1;
}

/** A refresh item's works whose merged record hashes as stored: their entries are not rewritten. */
async function unchangedWorks(diff: RefreshDiff, outcome: Done): Promise<ReadonlySet<Work>> {
  const stored = await diff?.(outcome.body);
  if (!stored) return NO_WORKS;
  return new Set(outcome.works.filter((w) => stored.get(w.id) === workHash(w)));
}

const NO_WORKS: ReadonlySet<Work> = new Set();

/**
 * The invocation's KV allowance shared by authors that finish at different times: an author is admitted
 * only if its writes fit beside what earlier authors were promised and the marker reads still to come.
 */
class KvAdmission {
  private promised = 0;
  private readonly budget: Budget;
  private unreadMarkers: number;

  constructor(budget: Budget, authors: number) {
    this.budget = budget;
    this.unreadMarkers = authors;
  }

  /** An author's marker read is done (called after it, so the read is counted twice meanwhile: safe). */
  markerRead(): void {
    this.unreadMarkers--;
  }

  admit(units: number): boolean {
    if (units > this.budget.remaining() - this.promised - this.unreadMarkers) return false;
    this.promised += units;
    return true;
  }

  /** Promised units that are no longer owed: about to be taken by a put (synchronously), or not needed. */
  settle(units: number): void {
    this.promised -= units;
  }
}
