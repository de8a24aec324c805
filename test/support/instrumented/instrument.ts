import type { Requester } from "../../../src/sources/grant-scheduler";
import type { QuotaPolicy } from "../../../src/sources/quota";
import { counters, modes } from "./counters";

/**
 * Wraps the bindings so every billable operation is counted, and (for chaos runs) every warm-queue
 * message is sent twice. Used by the instrumented entry (entry.ts) only, never by the production worker.
 */
const rawStatements = new WeakMap<object, D1PreparedStatement>();

function rowsWritten(result: unknown): number {
  const meta = (result as { meta?: { rows_written?: number } } | null)?.meta;
  return Number(meta?.rows_written ?? 0);
}

function wrapStatement(statement: D1PreparedStatement, scope: CounterScope): D1PreparedStatement {
  const proxy = new Proxy(statement, {
    get(target, prop) {
      if (prop === "bind") return (...args: unknown[]) => wrapStatement(target.bind(...args), scope);
      if (prop === "run" || prop === "all" || prop === "first" || prop === "raw") {
        return async (...args: unknown[]) => {
          // A lone statement is a round trip of its own, billed and timed like a batch of one.
          countRoundTrip(scope, 1);
          const result = await (target[prop] as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          if (prop !== "first" && prop !== "raw") counters.d1RowsWritten += rowsWritten(result);
          return result;
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  rawStatements.set(proxy, statement);
  return proxy;
}

function wrapD1(db: D1Database, scope: CounterScope): D1Database {
  return new Proxy(db, {
    get(target, prop) {
      if (prop === "prepare") return (sql: string) => wrapStatement(target.prepare(sql), scope);
      if (prop === "batch") {
        return async (statements: D1PreparedStatement[]) => {
          countRoundTrip(scope, statements.length);
          const results = await target.batch(statements.map((s) => rawStatements.get(s) ?? s));
          for (const r of results) counters.d1RowsWritten += rowsWritten(r);
          return results;
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

function wrapKv(kv: KVNamespace): KVNamespace {
  const kinds: Record<string, keyof typeof counters> = {
    get: "kvReads",
    getWithMetadata: "kvReads",
    put: "kvWrites",
    delete: "kvDeletes",
    list: "kvLists",
  };
  return new Proxy(kv, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      const kind = typeof prop === "string" ? kinds[prop] : undefined;
      if (kind && typeof value === "function") {
        return (...args: unknown[]) => {
          counters[kind]++;
          return value.apply(target, args);
        };
      }
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

const MAX_SEND_BATCH = 100;

/** The original design's producer: one `send()` per message (only for uploads, when the mode says so). */
async function sendOneByOne(queue: Queue, messages: MessageSendRequest[], options?: QueueSendBatchOptions) {
  for (const message of messages) {
    counters.queueSendCalls++;
    counters.queueMessagesSent++;
    await queue.send(message.body, { contentType: message.contentType, delaySeconds: options?.delaySeconds });
  }
}

function wrapQueue(queue: Queue, scope: CounterScope): Queue {
  return new Proxy(queue, {
    get(target, prop) {
      if (prop === "send") {
        return async (body: unknown, options?: QueueSendOptions) => {
          const copies = modes.duplicateDelivery ? 2 : 1;
          for (let i = 0; i < copies; i++) {
            counters.queueSendCalls++;
            counters.queueMessagesSent++;
            await target.send(body, options);
          }
        };
      }
      if (prop === "sendBatch") {
        return async (messages: Iterable<MessageSendRequest>, options?: QueueSendBatchOptions) => {
          const list = [...messages];
          if (scope === "api" && modes.producer === "naive") return sendOneByOne(target, list, options);
          const all = modes.duplicateDelivery ? [...list, ...list] : list;
          for (let i = 0; i < all.length; i += MAX_SEND_BATCH) {
            const chunk = all.slice(i, i + MAX_SEND_BATCH);
            counters.queueSendBatchCalls++;
            counters.queueMessagesSent += chunk.length;
            await target.sendBatch(chunk, options);
          }
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

function wrapRateLimiter(namespace: Env["RATE_LIMITER"]): Env["RATE_LIMITER"] {
  return new Proxy(namespace, {
    get(target, prop) {
      if (prop === "get") {
        return (id: DurableObjectId) => {
          const stub = target.get(id);
          // An RPC stub answers any property with a remote method (even `apply`), so methods are called
          // directly on the stub, never through Function.prototype helpers.
          return {
            acquire: (rate: number, maxWaitMs: number, quota?: QuotaPolicy, requester?: Requester) => {
              counters.rateLimiterCalls++;
              return stub.acquire(rate, maxWaitMs, quota, requester);
            },
            exhaust: (quota: QuotaPolicy) => {
              counters.rateLimiterCalls++;
              return stub.exhaust(quota);
            },
            quota: (quota: QuotaPolicy) => {
              counters.rateLimiterCalls++;
              return stub.quota(quota);
            },
            pause: (milliseconds: number) => {
              counters.rateLimiterCalls++;
              return stub.pause(milliseconds);
            },
            takeAllowance: (perMinute: number) => {
              counters.rateLimiterCalls++;
              return stub.takeAllowance(perMinute);
            },
          } as unknown as typeof stub;
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** Who is using the bindings: the warm queue's consumer has its own D1 count beside the total. */
export type CounterScope = "warm-consumer" | "api" | "other";

function countRoundTrip(scope: CounterScope, statements: number): void {
  counters.d1Batches++;
  counters.d1Statements += statements;
  if (scope !== "warm-consumer") return;
  counters.consumerD1Batches++;
  counters.consumerD1Statements += statements;
}

export function instrumentEnv(env: Env, scope: CounterScope = "other"): Env {
  return {
    ...env,
    DB: wrapD1(env.DB, scope),
    CACHE: wrapKv(env.CACHE),
    WARM_QUEUE: wrapQueue(env.WARM_QUEUE, scope),
    ISBN_QUEUE: wrapQueue(env.ISBN_QUEUE, scope),
    PRIORITY_QUEUE: wrapQueue(env.PRIORITY_QUEUE, scope),
    RATE_LIMITER: wrapRateLimiter(env.RATE_LIMITER),
  };
}

export function instrumentFetch(fetcher: typeof fetch): typeof fetch {
  return (input, init) => {
    counters.upstreamRequests++;
    return fetcher(input, init);
  };
}
