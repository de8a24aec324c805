import { z } from "zod";
import { chunkJson } from "./types";

/** An item whose own KV entry (an author's works list, an ISBN item's edition) a consumer batch wrote. */
export interface WrittenItem {
  itemKey: string;
  kind: "author" | "isbn";
  name: string;
  ttlSeconds: number;
  /** Written by a refresh job: the item's request time stays, its refresh time moves. */
  refresh: boolean;
}

/**
 * Records when each item's entry was written and when it expires, in the consumer's batch. An upload's
 * warm is a request (requested_at moves); a refresh is not, so an item nobody uploads again stops being
 * refreshed once its last request is older than REFRESH_RECENT_DAYS.
 */
export function upsertCachedItemsStatements(
  db: D1Database,
  items: readonly WrittenItem[],
  now: number,
): D1PreparedStatement[] {
  const rows = items.map((i) => ({
    k: i.itemKey,
    t: i.kind,
    n: i.name,
    e: now + i.ttlSeconds * 1000,
    r: i.refresh ? 1 : 0,
  }));
  return chunkJson(rows).map((chunk) =>
    db
      .prepare(
        `INSERT INTO cached_items (item_key, kind, name, written_at, expires_at, requested_at, refreshed_at)
         SELECT value ->> 'k', value ->> 't', value ->> 'n', ?2, value ->> 'e', ?2,
           CASE WHEN value ->> 'r' = 1 THEN ?2 END
         FROM json_each(?1) WHERE true
         ON CONFLICT (item_key) DO UPDATE SET name = excluded.name, written_at = excluded.written_at,
           expires_at = excluded.expires_at,
           requested_at = CASE WHEN excluded.refreshed_at IS NULL THEN excluded.requested_at
                               ELSE cached_items.requested_at END,
           refreshed_at = COALESCE(excluded.refreshed_at, cached_items.refreshed_at)`,
      )
      .bind(chunk, now),
  );
}

/** Items an upload asked for but skipped (their marker was fresh): still wanted, so still refreshed. */
export function touchRequestedStatements(
  db: D1Database,
  itemKeys: readonly string[],
  now: number,
): D1PreparedStatement[] {
  return chunkJson(itemKeys).map((chunk) =>
    db
      .prepare(
        `UPDATE cached_items SET requested_at = ?2
         WHERE item_key IN (SELECT value FROM json_each(?1)) AND requested_at < ?2`,
      )
      .bind(chunk, now),
  );
}

const expiringRow = z.object({
  item_key: z.string(),
  kind: z.enum(["author", "isbn"]),
  name: z.string(),
  expires_at: z.number(),
});
export type ExpiringItem = z.infer<typeof expiringRow>;

/**
 * What a refresh run re-warms: items whose entry expires before `until` and that an upload asked for since
 * `requestedSince`, soonest first, at most `limit` (the expiry index drives the scan).
 */
export async function listExpiringItems(
  db: D1Database,
  q: { until: number; requestedSince: number; limit: number },
): Promise<ExpiringItem[]> {
  if (q.limit <= 0) return [];
  const { results } = await db
    .prepare(
      `SELECT item_key, kind, name, expires_at FROM cached_items
       WHERE expires_at <= ?1 AND requested_at >= ?2 ORDER BY expires_at, item_key LIMIT ?3`,
    )
    .bind(q.until, q.requestedSince, q.limit)
    .all();
  return results.map((r) => expiringRow.parse(r));
}

/** A refresh job still open: the next run waits for it rather than select the same items twice. */
export async function openRefreshJob(db: D1Database): Promise<string | null> {
  const row = await db
    .prepare(
      `SELECT id FROM jobs WHERE kind = 'refresh' AND status IN ('queued', 'running', 'paused')
       ORDER BY created_at DESC LIMIT 1`,
    )
    .first<{ id: string }>();
  return row?.id ?? null;
}
