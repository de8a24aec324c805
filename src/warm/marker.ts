import { cacheKeys } from "../cache/keys";
import { isbnOfItemKey } from "../ingest/isbn";
import { isRefreshJob } from "../refresh/ids";
import type { WarmMessage } from "./messages";

/** `warming:processed:{author}`: who was warmed, when, and how deep below them discovery went. */
export interface ProcessedMarker {
  worksCount: number;
  lastWarmed: string;
  depthExplored: number;
  jobId: string;
  /** Set by a refresh job's warm (ISO 8601): when the scheduled refresh last re-fetched this item. */
  lastRefreshedAt?: string;
}

const MARKER_MAX_AGE_MS = 90 * 24 * 60 * 60 * 1000;

export function markerFor(body: WarmMessage, worksCount: number, now: number): ProcessedMarker {
  const at = new Date(now).toISOString();
  return {
    worksCount,
    lastWarmed: at,
    depthExplored: body.maxDepth - body.depth,
    jobId: body.jobId,
    ...(isRefreshJob(body.jobId) ? { lastRefreshedAt: at } : {}),
  };
}

/**
 * Skip an author only when a previous warm explored at least as many levels below them as this job
 * asks for: a depth-0 warm does not stand in for a request to discover co-authors. A refresh never skips:
 * its whole point is to fetch again what a marker says was warmed.
 */
export function isFreshEnough(marker: ProcessedMarker, body: WarmMessage, now: number): boolean {
  if (isRefreshJob(body.jobId)) return false;
  const age = now - Date.parse(marker.lastWarmed);
  return (
    Number.isFinite(age) && age < MARKER_MAX_AGE_MS && marker.depthExplored >= body.maxDepth - body.depth
  );
}

/** An author's marker is keyed by its name; an ISBN item's by its item key (`isbn:978…`, never a name). */
export function markerKey(body: WarmMessage): string {
  return cacheKeys.processedMarker(isbnOfItemKey(body.authorKey) === null ? body.authorName : body.authorKey);
}

/** An ISBN has no depth below it: its marker only has to be recent and to have found the edition. */
export function isFreshIsbnMarker(marker: ProcessedMarker, now: number, body?: WarmMessage): boolean {
  if (body && isRefreshJob(body.jobId)) return false;
  const age = now - Date.parse(marker.lastWarmed);
  return Number.isFinite(age) && age < MARKER_MAX_AGE_MS && marker.worksCount > 0;
}
