import { getWorkHashes } from "../db/works";
import type { WarmMessage } from "../warm/messages";
import { isRefreshJob } from "./ids";

/** A refresh item's stored work hashes (work id → hash), or null for an item that is not a refresh's. */
export type RefreshDiff = ((body: WarmMessage) => Promise<ReadonlyMap<string, string> | null>) | null;

/**
 * Starts reading, in one D1 round trip, the stored hashes of the works of every refresh item in the batch
 * (none for a batch without refresh items, the common case: no read at all). A failed read diffs nothing:
 * every work is written, as a plain warm would.
 */
export function refreshDiff(db: D1Database | undefined, work: readonly { body: WarmMessage }[]): RefreshDiff {
  const keys = work.filter((d) => isRefreshJob(d.body.jobId)).map((d) => d.body.authorKey);
  if (!db || keys.length === 0) return null;
  const loaded = getWorkHashes(db, keys).catch((error) => {
    console.error(JSON.stringify({ msg: "refresh hashes unread; writing every work", error: String(error) }));
    return new Map<string, Map<string, string>>();
  });
  return async (body) => (isRefreshJob(body.jobId) ? ((await loaded).get(body.authorKey) ?? null) : null);
}
