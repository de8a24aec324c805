import type { Delivery } from "./intake";

/**
 * How many items share an upstream request on a given delivery attempt: a group whose request failed is
 * split on its next tries (full → a fifth → 1), so one item that breaks its request cannot fail its
 * neighbours more than twice, and an outage does not multiply requests by splitting at once.
 */
export function groupSizeFor(attempt: number, full: number): number {
  if (attempt <= 1) return full;
  return attempt === 2 ? Math.max(1, Math.ceil(full / 5)) : 1;
}

/** Deliveries grouped for upstream requests: the same attempt together, each group within its size. */
export function groupDeliveries(work: readonly Delivery[], full: number): Delivery[][] {
  const byAttempt = new Map<number, Delivery[]>();
  for (const d of work) byAttempt.set(d.message.attempts, [...(byAttempt.get(d.message.attempts) ?? []), d]);
  const groups: Delivery[][] = [];
  for (const [attempt, items] of byAttempt) {
    const size = groupSizeFor(attempt, full);
    for (let i = 0; i < items.length; i += size) groups.push(items.slice(i, i + size));
  }
  return groups;
}
