import { PRIORITY_WEIGHTS } from "../../config";
import type { Budget } from "../../lib/budget";
import type { SourcesContext } from "../../sources";
import type { Priority, Requester } from "../../sources/grant-scheduler";
import { UpstreamTally } from "../../sources/tally";
import { failureOutcome } from "./failure";
import type { Delivery } from "./intake";
import { DEFER_DELAY_SECONDS, type Outcome, type WarmDeps } from "./types";

/**
 * How many items share an upstream request on a given try: a group whose request failed is split on its
 * next tries (full → a fifth → 1), so one item that breaks its request cannot fail its neighbours more than
 * twice, and an outage does not multiply requests by splitting at once.
 */
export function groupSizeFor(attempt: number, full: number): number {
  if (attempt <= 1) return full;
  return attempt === 2 ? Math.max(1, Math.ceil(full / 5)) : 1;
}

/**
 * Which try a delivery is: its delivery attempt, or one past the author's own failures when that is more.
 * A message the dead-letter consumer re-sent starts again at attempt 1; grouped by attempt alone, it would
 * share a full group with the same failing neighbour it came in with, and fail for it again, until its
 * allowance was spent.
 */
export function tryOf(d: Delivery): number {
  return Math.max(d.message.attempts, (d.failures ?? 0) + 1);
}

/** Deliveries grouped for upstream requests: the same try together, each group within its size. */
export function groupDeliveries(work: readonly Delivery[], full: number): Delivery[][] {
  const byTry = new Map<number, Delivery[]>();
  for (const d of work) byTry.set(tryOf(d), [...(byTry.get(tryOf(d)) ?? []), d]);
  const groups: Delivery[][] = [];
  for (const [tried, items] of byTry) {
    const size = groupSizeFor(tried, full);
    for (let i = 0; i < items.length; i += size) groups.push(items.slice(i, i + size));
  }
  return groups;
}

/**
 * Who a group's requests are for at the provider scheduler: its highest-priority member's job (the first
 * such member), so a high job's item is never held back by the normal items it happens to share a request with.
 */
export function requesterOf(
  group: readonly Delivery[],
  priorities: ReadonlyMap<string, Priority> | undefined,
): Requester {
  let best: Requester | undefined;
  for (const { body } of group) {
    const priority = priorities?.get(body.jobId) ?? "normal";
    if (!best || PRIORITY_WEIGHTS[priority] > PRIORITY_WEIGHTS[best.priority])
      best = { jobId: body.jobId, priority };
  }
  return best ?? { jobId: "(none)", priority: "normal" };
}

/**
 * The frame of one grouped upstream request: reserve its subrequests (the whole group is deferred when the
 * invocation's budget is spent), hand the sources their context (who asks: the group's highest-priority
 * job), count the group's tries on its first message's job (the sources count them on its first member)
 * and give back what was not used.
 */
export async function warmGroupWith(
  group: readonly Delivery[],
  reserve: number,
  subrequests: Budget,
  deps: WarmDeps,
  ask: (sources: SourcesContext) => Promise<Outcome[]>,
): Promise<Outcome[]> {
  const reservation = await subrequests.reserve(reserve);
  if (!reservation) {
    return group.map(({ body }) => ({
      kind: "defer",
      body,
      delaySeconds: DEFER_DELAY_SECONDS,
      reason: "invocation budget reached",
    }));
  }
  const tally = new UpstreamTally();
  const { config, fetch, breakers, rateLimiter } = deps;
  try {
    const requester = requesterOf(group, deps.priorities);
    return await ask({ config, fetch, breakers, rateLimiter, requester, subrequests: reservation, tally });
  } finally {
    deps.usage?.addUpstream(tally, (group[0] as Delivery).body.jobId);
    reservation.release();
  }
}

/** A member's failure in its group's answer: one refused for a neighbour's sake is retried (and so split), never failed for good. */
export function groupMemberFailure(error: unknown, d: Delivery, groupSize: number, deps: WarmDeps): Outcome {
  const outcome = failureOutcome(error, d, deps);
  if (outcome.kind === "failed" && groupSize > 1) return failureOutcome(new Error(outcome.message), d, deps);
  return outcome;
}
