import { TTL_SECONDS } from "../cache/keys";
import { touchRequestedStatements, upsertCachedItemsStatements, type WrittenItem } from "../db/cached-items";
import { isbnOfItemKey } from "../ingest/isbn";
import type { Outcome } from "../warm/consumer/types";
import { isRefreshJob } from "./ids";

/**
 * The cached_items statements for a consumer batch's outcomes: each done item that cached works (its list
 * or edition entry was written with its TTL just now), and each upload item skipped on a fresh marker
 * (asked for again, so still worth refreshing). Items that found nothing are not refreshed.
 */
export function cachedItemWrites(db: D1Database, outcomes: readonly Outcome[], now: number) {
  const written: WrittenItem[] = [];
  const asked: string[] = [];
  for (const o of outcomes) {
    const refresh = isRefreshJob(o.body.jobId);
    if (o.kind === "skipped" && !refresh) asked.push(o.body.authorKey);
    if (o.kind !== "done" || o.works.length === 0) continue;
    const isbn = isbnOfItemKey(o.body.authorKey) !== null;
    written.push({
      itemKey: o.body.authorKey,
      kind: isbn ? "isbn" : "author",
      name: o.body.authorName,
      ttlSeconds: isbn ? TTL_SECONDS.bookByIsbn : TTL_SECONDS.authorWorks,
      refresh,
    });
  }
  return [
    ...(written.length > 0 ? upsertCachedItemsStatements(db, written, now) : []),
    ...(asked.length > 0 ? touchRequestedStatements(db, asked, now) : []),
  ];
}
