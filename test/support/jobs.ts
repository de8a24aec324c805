import { env } from "cloudflare:workers";
import { loadConfig } from "../../src/config";
import { createJobStatements } from "../../src/db/jobs";
import { runSteps } from "../../src/db/step";
import { markQueued } from "../../src/db/tasks";
import { isbnItemKey } from "../../src/ingest/isbn";
import { authorKey } from "../../src/ingest/normalize";
import { createProviderBreakers } from "../../src/sources";
import type { WarmDeps } from "../../src/warm/consumer";
import type { WarmMessage } from "../../src/warm/messages";
import { upstream } from "./upstream";

/** A job with depth-0 tasks already queued (no messages sent): the state a consumer expects. */
export async function seedJob(
  authors: string[],
  maxDepth = 2,
  isbns: string[] = [],
): Promise<{ jobId: string; messages: WarmMessage[] }> {
  const jobId = crypto.randomUUID();
  const now = Date.now();
  const rows = [
    ...authors.map((name) => ({ key: authorKey(name), name })),
    ...isbns.map((isbn) => ({ key: isbnItemKey(isbn), name: isbn, kind: "isbn" as const })),
  ];
  await env.DB.batch(
    createJobStatements(
      env.DB,
      {
        id: jobId,
        maxDepth,
        priority: "normal",
        format: "generic",
        filename: null,
        idempotencyKey: null,
        requestHash: "test",
        rowsTotal: authors.length,
        duplicatesSkipped: 0,
        now,
      },
      rows,
    ),
  );
  const messages = rows.map((r) => ({
    v: 1 as const,
    jobId,
    authorKey: r.key,
    authorName: r.name,
    depth: 0,
    maxDepth,
    gen: 0,
  }));
  await runSteps(env.DB, [markQueued(env.DB, messages, now)]);
  return { jobId, messages };
}

export function warmDeps(overrides: Partial<WarmDeps> = {}): WarmDeps {
  return {
    config: loadConfig(env),
    fetch: upstream.fetch,
    now: Date.now,
    random: () => 0.5,
    breakers: createProviderBreakers(),
    ...overrides,
  };
}

/** What createMessageBatch takes (the type lives only in the experimental workers-types). */
export interface QueueMessageInput<T = unknown> {
  id: string;
  timestamp: Date;
  attempts: number;
  body: T;
}

let counter = 0;
export function queueMessage<T>(body: T, attempts = 1): QueueMessageInput<T> {
  counter++;
  return { id: `msg-${counter}`, timestamp: new Date(), attempts, body };
}

/** The test KV namespace with every operation counted (what Cloudflare bills per invocation). */
export function countingKv(): { kv: KVNamespace; operations: () => number } {
  let operations = 0;
  const counted = <T extends (...args: never[]) => unknown>(fn: T) =>
    ((...args: Parameters<T>) => {
      operations++;
      return fn(...args);
    }) as T;
  const kv = {
    get: counted(env.CACHE.get.bind(env.CACHE)),
    put: counted(env.CACHE.put.bind(env.CACHE)),
    delete: counted(env.CACHE.delete.bind(env.CACHE)),
    list: counted(env.CACHE.list.bind(env.CACHE)),
  } as unknown as KVNamespace;
  return { kv, operations: () => operations };
}
