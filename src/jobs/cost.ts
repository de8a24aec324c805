import { z } from "zod";
import { PRICE_TABLE } from "../config";
import type { JobCounters } from "../warm/usage";

const count = z.number().int().nonnegative();
const usd = z.number().nonnegative();

/** A job's billable operations and their price at list prices (GET /api/jobs/:id `cost`, the manifest). */
export const jobCostSchema = z.object({
  consumerInvocations: count.describe("Consumer invocations that handled the job's messages"),
  queueOperations: count.describe("Messages sent + deliveries (reads, retries included) + acks"),
  queue: z.object({ sent: count, delivered: count, retried: count, acked: count }),
  kvReads: count,
  kvWrites: count,
  d1RowsRead: count,
  d1RowsWritten: count,
  upstreamRequests: z.record(z.string(), count).describe("Tries per provider"),
  estimateUsd: z.object({
    queues: usd,
    kvReads: usd,
    kvWrites: usd,
    d1RowsRead: usd,
    d1RowsWritten: usd,
    total: usd,
  }),
});
export type JobCost = z.infer<typeof jobCostSchema>;

const price = (n: number, perMillion: number) => (n * perMillion) / 1_000_000;

/** The counters as the API reports them, priced with the table in config. */
export function describeCost(c: JobCounters): JobCost {
  const queueOperations = c.queueSent + c.queueDelivered + c.queueAcked;
  const p = PRICE_TABLE;
  const parts = {
    queues: price(queueOperations, p.queueOperationsPerMillion),
    kvReads: price(c.kvReads, p.kvReadsPerMillion),
    kvWrites: price(c.kvWrites, p.kvWritesPerMillion),
    d1RowsRead: price(c.d1RowsRead, p.d1RowsReadPerMillion),
    d1RowsWritten: price(c.d1RowsWritten, p.d1RowsWrittenPerMillion),
  };
  return {
    consumerInvocations: c.invocations,
    queueOperations,
    queue: { sent: c.queueSent, delivered: c.queueDelivered, retried: c.queueRetried, acked: c.queueAcked },
    kvReads: c.kvReads,
    kvWrites: c.kvWrites,
    d1RowsRead: c.d1RowsRead,
    d1RowsWritten: c.d1RowsWritten,
    upstreamRequests: { openlibrary: c.openlibraryRequests, googlebooks: c.googlebooksRequests },
    estimateUsd: { ...parts, total: Object.values(parts).reduce((a, b) => a + b, 0) },
  };
}
