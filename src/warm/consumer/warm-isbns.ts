import type { Cache } from "../../cache/kv";
import { isbnOfItemKey } from "../../ingest/isbn";
import type { Budget } from "../../lib/budget";
import { mapWithConcurrency } from "../../lib/budget";
import { type IsbnResult, lookupIsbns } from "../../sources/isbn-lookup";
import { ISBN_GROUP_MAX } from "../../sources/openlibrary-isbns";
import { isFreshIsbnMarker, markerKey, type ProcessedMarker } from "../marker";
import { failureOutcome } from "./failure";
import { groupDeliveries, groupMemberFailure, warmGroupWith } from "./group";
import type { Delivery } from "./intake";
import type { Outcome, WarmDeps } from "./types";

/** Subrequests a group may need: Open Library once (and its slot), Google once per ISBN (and its slot). */
function groupReservation(group: readonly Delivery[], withRateLimiter: boolean): number {
  return (1 + group.length) * (withRateLimiter ? 2 : 1);
}

/**
 * Warms ISBN items: a fresh marker skips one; the rest are looked up a group per request. Each item gets its
 * own outcome: done with its edition (or with none when no source knows the ISBN), or its failure.
 */
export async function warmIsbns(
  work: readonly Delivery[],
  cache: Cache,
  subrequests: Budget,
  deps: WarmDeps,
  settle: (outcome: Outcome) => Promise<Outcome> = async (o) => o,
): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  const toLookUp: Delivery[] = [];
  await Promise.all(
    work.map(async (d) => {
      const marker = await cache.get<ProcessedMarker>(markerKey(d.body));
      if (marker && isFreshIsbnMarker(marker, deps.now(), d.body))
        outcomes.push({ kind: "skipped", body: d.body, marker });
      else toLookUp.push(d);
    }),
  );
  // Settled at once (their marker reads are done), then each group as soon as it answers.
  const skipped = await Promise.all(outcomes.map(settle));
  const groups = groupDeliveries(
    toLookUp,
    Math.min(ISBN_GROUP_MAX, deps.config.OPENLIBRARY_ISBNS_PER_REQUEST),
  );
  const looked = await mapWithConcurrency(groups, 2, async (group) =>
    Promise.all((await warmGroup(group, subrequests, deps)).map(settle)),
  );
  return [...skipped, ...looked.flat()];
}

function warmGroup(group: readonly Delivery[], subrequests: Budget, deps: WarmDeps): Promise<Outcome[]> {
  const reserve = groupReservation(group, deps.rateLimiter !== undefined);
  return warmGroupWith(group, reserve, subrequests, deps, async (sources) => {
    const isbns = group.map((d) => isbnOfItemKey(d.body.authorKey) as string);
    const results = await lookupIsbns(isbns, sources);
    return group.map((d, i) => outcomeOf(d, results.get(isbns[i] as string), group.length, deps));
  });
}

function outcomeOf(d: Delivery, result: IsbnResult | undefined, groupSize: number, deps: WarmDeps): Outcome {
  if (result === undefined) return failureOutcome(new Error("ISBN missing from its group's answer"), d, deps);
  if (!result.ok) return groupMemberFailure(result.error, d, groupSize, deps);
  const works = result.work ? [result.work] : [];
  return { kind: "done", body: d.body, works, reports: result.reports, requests: result.requests };
}
