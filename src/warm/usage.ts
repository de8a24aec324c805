import { PROVIDERS, UpstreamTally } from "../sources/tally";
import type { SourceName } from "../sources/types";

/** A job's billable operations, as one invocation (or the sum of many) counted them. */
export interface JobCounters {
  invocations: number;
  /** Queue writes: a message's first delivery stands for its send (uploads' and the consumer's alike). */
  queueSent: number;
  /** Every delivery is a queue read (a retry is read again). */
  queueDelivered: number;
  queueRetried: number;
  /** Acks are the queue's deletes. */
  queueAcked: number;
  kvReads: number;
  kvWrites: number;
  d1RowsRead: number;
  d1RowsWritten: number;
  openlibraryRequests: number;
  googlebooksRequests: number;
}

export const emptyCounters = (): JobCounters => ({
  invocations: 0,
  queueSent: 0,
  queueDelivered: 0,
  queueRetried: 0,
  queueAcked: 0,
  kvReads: 0,
  kvWrites: 0,
  d1RowsRead: 0,
  d1RowsWritten: 0,
  openlibraryRequests: 0,
  googlebooksRequests: 0,
});

/** Splits `total` across jobs in proportion to their messages, the remainder to the largest shares. */
export function apportion(total: number, weights: ReadonlyMap<string, number>): Map<string, number> {
  const sum = [...weights.values()].reduce((a, b) => a + b, 0);
  const out = new Map<string, number>();
  if (sum === 0 || total === 0) {
    for (const k of weights.keys()) out.set(k, 0);
    return out;
  }
  const exact = [...weights].map(([k, w]) => ({ k, q: (total * w) / sum }));
  for (const { k, q } of exact) out.set(k, Math.floor(q));
  let left = total - [...out.values()].reduce((a, b) => a + b, 0);
  for (const { k } of exact.sort((a, b) => (b.q % 1) - (a.q % 1))) {
    if (left-- <= 0) break;
    out.set(k, (out.get(k) ?? 0) + 1);
  }
  return out;
}

/**
 * What one consumer invocation spent, counted in memory while it runs and written once, in the batch it
 * already makes. Upstream requests are attributed to the job of a group's first message (as the sources
 * count a group's requests on its first member); KV operations and D1 rows, which serve the whole batch,
 * are apportioned by each job's share of the batch's messages.
 */
export class InvocationUsage {
  readonly upstream = new UpstreamTally();
  readonly jobs = new Map<string, JobCounters>();

  job(jobId: string): JobCounters {
    let c = this.jobs.get(jobId);
    if (!c) {
      c = emptyCounters();
      c.invocations = 1;
      this.jobs.set(jobId, c);
    }
    return c;
  }

  /** A group's tries: into the invocation's per-provider sums, and onto the job that asked. */
  addUpstream(group: UpstreamTally, jobId: string): void {
    this.upstream.add(group);
    const c = this.job(jobId);
    c.openlibraryRequests += group.byProvider.openlibrary.requests;
    c.googlebooksRequests += group.byProvider.googlebooks.requests;
  }

  /** Invocation-wide KV operations or D1 rows, shared out by messages per job. */
  share(field: "kvReads" | "kvWrites" | "d1RowsRead" | "d1RowsWritten", total: number): void {
    const weights = new Map([...this.jobs].map(([id, c]) => [id, c.queueDelivered]));
    for (const [id, n] of apportion(total, weights)) this.job(id)[field] += n;
  }

  providerRows(): { provider: SourceName; requests: number; errors: number; throttled: number }[] {
    return PROVIDERS.map((p) => ({ provider: p, ...this.upstream.byProvider[p] })).filter(
      (r) => r.requests > 0,
    );
  }
}

/**
 * Operations that happen after the invocation's D1 batch (the batch's own D1 rows, marker writes) cannot be
 * in that batch: they are carried here and written with this isolate's next batch. An isolate that is
 * evicted first loses them (documented in the README as the counters' known gap).
 */
const carried = new Map<string, JobCounters>();

export function carryOver(jobId: string, partial: Partial<JobCounters>): void {
  const c = carried.get(jobId) ?? emptyCounters();
  for (const [k, v] of Object.entries(partial) as [keyof JobCounters, number][]) c[k] += v;
  carried.set(jobId, c);
}

/** Takes what earlier invocations of this isolate carried, adding it to this invocation's counters. */
export function takeCarried(usage: InvocationUsage): void {
  for (const [jobId, c] of carried) {
    const into = usage.jobs.get(jobId);
    if (into) for (const k of Object.keys(c) as (keyof JobCounters)[]) into[k] += c[k];
    else usage.jobs.set(jobId, { ...c });
  }
  carried.clear();
}
