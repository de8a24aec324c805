import { cacheKeys } from "../cache/keys";
import { isbnOfItemKey } from "../ingest/isbn";
import type { WarmMessage } from "./messages";

/** `warming:processed:{author}`: who was warmed, when, and how deep below them discovery went. */
export interface ProcessedMarker {
  worksCount: number;
  lastWarmed: string;
  depthExplored: number;
  jobId: string;
}

const MARKER_MAX_AGE_MS = 90 * 24 * 60 * 60 * 1000;

export function markerFor(body: WarmMessage, worksCount: number, now: number): ProcessedMarker {
  return {
    worksCount,
    lastWarmed: new Date(now).toISOString(),
    depthExplored: body.maxDepth - body.depth,
    jobId: body.jobId,
  };
}

/**
 * Skip an author only when a previous warm explored at least as many levels below them as this job
 * asks for: a depth-0 warm does not stand in for a request to discover co-authors.
 */
export function isFreshEnough(marker: ProcessedMarker, body: WarmMessage, now: number): boolean {
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
export function isFreshIsbnMarker(marker: ProcessedMarker, now: number): boolean {
  const age = now - Date.parse(marker.lastWarmed);
  return Number.isFinite(age) && age < MARKER_MAX_AGE_MS && marker.worksCount > 0;
}
