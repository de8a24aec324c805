import type { Config } from "../config";
import type { SourceName } from "../sources/types";

export interface ProviderQuotaState {
  used: number;
  limit: number | null;
  exhausted: boolean;
}

export interface RefreshBound {
  /** Items this run may select: 0 skips the run. */
  items: number;
  /** Why the run was skipped or shrunk (null: the full REFRESH_MAX_ITEMS). */
  reason: string | null;
}

const enabled = (config: Config, source: SourceName) =>
  source === "openlibrary" ? config.OPENLIBRARY_ENABLED : config.GOOGLE_BOOKS_ENABLED;

/**
 * How many items a run may re-warm within the daily quotas, read as /health reads them. Each enabled
 * provider with a quota must keep REFRESH_QUOTA_RESERVE of it for uploads: at or under that the run is
 * skipped, else it is shrunk to the spare requests, counting one per item (an upper bound: authors are
 * grouped ten to an Open Library request, and Google is asked only for what Open Library lacks). Quotas
 * that cannot be read skip the run: a refresh is never worth spending a quota blind.
 */
export function refreshBound(
  config: Config,
  quotas: Record<SourceName, ProviderQuotaState> | null,
): RefreshBound {
  if (quotas === null) return { items: 0, reason: "provider quotas unreadable" };
  let items = config.REFRESH_MAX_ITEMS;
  let reason: string | null = null;
  for (const source of ["openlibrary", "googlebooks"] as const) {
    if (!enabled(config, source)) continue;
    const q = quotas[source];
    if (q.exhausted) return { items: 0, reason: `${source} quota spent` };
    if (q.limit === null) continue;
    const reserve = Math.ceil(q.limit * config.REFRESH_QUOTA_RESERVE);
    const spare = q.limit - q.used - reserve;
    if (spare <= 0)
      return {
        items: 0,
        reason: `${source} quota low: ${q.used} of ${q.limit} used, ${reserve} kept for uploads`,
      };
    if (spare < items) {
      items = spare;
      reason = `shrunk to ${spare} by the ${source} quota (${q.used} of ${q.limit} used)`;
    }
  }
  return { items, reason };
}
