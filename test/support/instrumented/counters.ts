/**
 * What Cloudflare bills, counted inside the instrumented worker (entry.ts: benchmarks, chaos).
 * Counters live in the isolate: locally one isolate runs both the API and the consumers.
 */
export interface TestCounters {
  queueSendCalls: number;
  queueSendBatchCalls: number;
  queueMessagesSent: number;
  kvReads: number;
  kvWrites: number;
  kvDeletes: number;
  kvLists: number;
  /** D1 round trips: a batch, or a statement run on its own. */
  d1Batches: number;
  /** The share of d1Batches made by the warm queue's consumer (what "per message batch" is about). */
  consumerD1Batches: number;
  d1Statements: number;
  consumerD1Statements: number;
  d1RowsWritten: number;
  upstreamRequests: number;
  rateLimiterCalls: number;
  consumerInvocations: number;
  consumerMessages: number;
  /** Warm-queue invocations whose every message was a first delivery of generation 0, and their D1 round trips. */
  firstDeliveryInvocations: number;
  firstDeliveryD1Batches: number;
  crashes: number;
  /** The naive producer's wait for the ingest stage to write the tasks it then sends (entry.ts). */
  naiveWaitedForTasksMs: number;
}

function zero(): TestCounters {
  return {
    queueSendCalls: 0,
    queueSendBatchCalls: 0,
    queueMessagesSent: 0,
    kvReads: 0,
    kvWrites: 0,
    kvDeletes: 0,
    kvLists: 0,
    d1Batches: 0,
    consumerD1Batches: 0,
    d1Statements: 0,
    consumerD1Statements: 0,
    d1RowsWritten: 0,
    upstreamRequests: 0,
    rateLimiterCalls: 0,
    consumerInvocations: 0,
    consumerMessages: 0,
    firstDeliveryInvocations: 0,
    firstDeliveryD1Batches: 0,
    crashes: 0,
    naiveWaitedForTasksMs: 0,
  };
}

export const counters: TestCounters = zero();

export function resetCounters(): void {
  Object.assign(counters, zero());
}

/** Modes a benchmark or chaos run switches at runtime. */
export interface TestModes {
  /** `naive`: the original design's producer (one send() per author). */
  producer: "kindling" | "naive";
  /** `naive`: the original design's consumer (sequential, one awaited KV put per work, send() per co-author). */
  consumer: "kindling" | "naive";
  /** Fraction of consumer deliveries that crash (the handler throws, so the whole batch is retried). */
  crashRate: number;
  /** Every message sent to the warm queue is sent twice. */
  duplicateDelivery: boolean;
}

export const modes: TestModes = {
  producer: "kindling",
  consumer: "kindling",
  crashRate: 0,
  duplicateDelivery: false,
};
