import type { Cache } from "../../cache/kv";
import type { Budget } from "../../lib/budget";
import { mapWithConcurrency } from "../../lib/budget";
import { worstCaseSubrequests } from "../../sources";
import { type AuthorResult, fetchAuthorsGrouped } from "../../sources/author-groups";
import { AUTHOR_GROUP_MAX } from "../../sources/openlibrary-authors";
import { isFreshEnough, markerKey, type ProcessedMarker } from "../marker";
import { failureOutcome } from "./failure";
import { groupDeliveries, groupMemberFailure, warmGroupWith } from "./group";
import type { Delivery } from "./intake";
import type { Outcome, WarmDeps } from "./types";

/**
 * Subrequests a group is likely to need: its query's pages and Google for a few (each with its slot); a
 * single author (one per request) its worst case, as before grouping, so ten of them fit the budget.
 */
function groupReservation(group: readonly Delivery[], deps: WarmDeps): number {
  const withRateLimiter = deps.rateLimiter !== undefined;
  if (group.length === 1) return worstCaseSubrequests(deps.config, withRateLimiter);
  return (2 + group.length) * (withRateLimiter ? 2 : 1);
}

/**
 * Warms authors a group per Open Library request: a fresh, deep-enough marker skips one; the rest are
 * grouped (by delivery attempt, so a failing group is split next time) and each gets its own outcome.
 */
export async function warmAuthors(
  work: readonly Delivery[],
  cache: Cache,
  subrequests: Budget,
  deps: WarmDeps,
  settle: (outcome: Outcome) => Promise<Outcome> = async (o) => o,
): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  const toFetch: Delivery[] = [];
  const now = deps.now();
  await Promise.all(
    work.map(async (d) => {
      const marker = await cache.get<ProcessedMarker>(markerKey(d.body));
      if (marker && isFreshEnough(marker, d.body, now))
        outcomes.push({ kind: "skipped", body: d.body, marker });
      else toFetch.push(d);
    }),
  );
  // Settled at once (their marker reads are done), then each group as soon as it answers.
  const skipped = await Promise.all(outcomes.map(settle));
  const size = Math.min(AUTHOR_GROUP_MAX, deps.config.OPENLIBRARY_AUTHORS_PER_REQUEST);
  const groups = groupDeliveries(toFetch, size);
  // One author per request keeps the old pace: several in flight, as before grouping.
  const concurrency = size === 1 ? deps.config.CONSUMER_CONCURRENCY : 2;
  const fetched = await mapWithConcurrency(groups, concurrency, async (group) =>
    Promise.all((await warmGroup(group, subrequests, deps)).map(settle)),
  );
  return [...skipped, ...fetched.flat()];
}

function warmGroup(group: readonly Delivery[], subrequests: Budget, deps: WarmDeps): Promise<Outcome[]> {
  return warmGroupWith(group, groupReservation(group, deps), subrequests, deps, async (sources) => {
    // Two jobs may warm one author in the same batch: it is asked for once.
    const results = await fetchAuthorsGrouped([...new Set(group.map((d) => d.body.authorName))], sources);
    return group.map((d) => outcomeOf(d, results.get(d.body.authorName), group.length, deps));
  });
}

function outcomeOf(
  d: Delivery,
  result: AuthorResult | undefined,
  groupSize: number,
  deps: WarmDeps,
): Outcome {
  if (result === undefined)
    return failureOutcome(new Error("author missing from its group's answer"), d, deps);
  if (!result.ok) return groupMemberFailure(result.error, d, groupSize, deps);
  const { works, reports, requests } = result.result;
  return { kind: "done", body: d.body, works, reports, requests };
}
