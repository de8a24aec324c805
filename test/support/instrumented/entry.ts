/**
 * The instrumented worker for benchmarks, chaos runs and the tests that drive them. It wraps the production
 * entry (`src/index.ts`) from outside, so production code has no test branch:
 * - every binding is counted (what Cloudflare bills) and, in chaos runs, every queue message sent twice;
 * - upstream requests are counted by wrapping the isolate's `fetch`;
 * - `/__test/*` (counters, modes, audit, a seeded job) is served here, never by the production app;
 * - naive modes swap in the original design's producer (one `send()` per message) and consumer;
 * - chaos runs make the consumer throw before or after a batch, as a crash would.
 */

import { loadConfig } from "../../../src/config";
import worker, { JobWorkflow, ProviderRateLimiter } from "../../../src/index";
import { consumerDeps, isDeadLetterBatch } from "../../../src/warm/deps";
import { counters, modes } from "./counters";
import { testHooksApi } from "./hooks-api";
import { instrumentEnv, instrumentFetch } from "./instrument";
import { handleWarmBatchNaively } from "./naive";

export { JobWorkflow, ProviderRateLimiter };

const underlyingFetch = globalThis.fetch;
globalThis.fetch = instrumentFetch((input, init) => underlyingFetch(input, init));

function isFirstDelivery(message: Message<unknown>): boolean {
  return message.attempts === 1 && (message.body as { gen?: unknown } | null)?.gen === 0;
}

/** A chaos run's simulated crash: the handler throws, so the platform retries the whole batch. */
function maybeCrash(batchSize: number, where: string): void {
  if (modes.crashRate <= 0) return;
  const crashProbability = 1 - (1 - modes.crashRate) ** batchSize;
  if (Math.random() < crashProbability / 2) {
    counters.crashes++;
    throw new Error(`chaos: consumer crashed ${where}`);
  }
}

async function warmBatch(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  counters.consumerInvocations++;
  counters.consumerMessages += batch.messages.length;
  maybeCrash(batch.messages.length, "before processing");
  // Locally one warm batch runs at a time, so the difference is this invocation's own.
  const d1Before = counters.consumerD1Batches;
  const scoped = instrumentEnv(env, "warm-consumer");
  if (modes.consumer === "naive")
    await handleWarmBatchNaively(batch, scoped, consumerDeps(scoped, loadConfig(env)));
  else await worker.queue(batch, scoped);
  if (batch.messages.every(isFirstDelivery)) {
    counters.firstDeliveryInvocations++;
    counters.firstDeliveryD1Batches += counters.consumerD1Batches - d1Before;
  }
  maybeCrash(batch.messages.length, "after processing");
}

/** The upload routes: where the naive producer sends every message before it answers. */
const UPLOAD_PATHS = new Set(["/api/jobs", "/api/warming/upload"]);

/**
 * The original design's producer, measured against: every depth-0 author gets its message before the 202, one
 * awaited `send()` each (ISBN items, which came later, are admitted as usual) (the production upload sends nothing before it and admits a window after). Its
 * tasks are marked queued, as that producer wrote them; consumers process them as any message. The original
 * producer wrote its tasks before sending; the production upload now leaves that to the ingest stage, so
 * this waits for ingest to have written them (its time counts on the naive side, as it did when the upload
 * wrote them inline) and says how long it waited in `naiveWaitedForTasksMs`; it then sends every author, those
 * ingest already admitted too (a duplicate the consumer ignores), so it always makes one send per author.
 */
async function naiveProducer(response: Response, env: Env): Promise<Response> {
  if (response.status !== 202) return response;
  const { jobId } = (await response.clone().json()) as { jobId: string };
  const waitStarted = Date.now();
  await waitForRootTasks(env.DB, jobId);
  counters.naiveWaitedForTasksMs += Date.now() - waitStarted;
  const { results } = await env.DB.prepare(
    `UPDATE tasks SET status = CASE WHEN status = 'pending' THEN 'queued' ELSE status END
     WHERE job_id = ?1 AND depth = 0 AND kind = 'author'
     RETURNING author_key, author_name, (SELECT max_depth FROM jobs WHERE id = ?1) AS max_depth`,
  )
    .bind(jobId)
    .all<{ author_key: string; author_name: string; max_depth: number }>();
  const queue = instrumentEnv(env, "api").WARM_QUEUE;
  for (const t of results) {
    const body = {
      v: 1,
      jobId,
      authorKey: t.author_key,
      authorName: t.author_name,
      depth: 0,
      maxDepth: t.max_depth,
      gen: 0,
    };
    await queue.send(body, { contentType: "json" });
  }
  return response;
}

/** Polls until the job's ingest stage has written its depth-0 tasks (at most 5 minutes). */
async function waitForRootTasks(db: D1Database, jobId: string): Promise<void> {
  const until = Date.now() + 300_000;
  while (Date.now() < until) {
    const row = await db
      .prepare("SELECT roots_written FROM jobs WHERE id = ?1")
      .bind(jobId)
      .first<{ roots_written: number }>();
    if (row?.roots_written === 1) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`naive producer: job ${jobId}'s tasks were not written within 5 minutes`);
}

export default {
  async fetch(request, env, ctx) {
    const path = new URL(request.url).pathname;
    if (path.startsWith("/__test")) return testHooksApi.fetch(request, env, ctx);
    const response = await worker.fetch(request, instrumentEnv(env, "api"), ctx);
    if (modes.producer === "naive" && request.method === "POST" && UPLOAD_PATHS.has(path))
      return naiveProducer(response, env);
    return response;
  },

  async queue(batch, env) {
    if (isDeadLetterBatch(batch)) return worker.queue(batch, instrumentEnv(env, "other"));
    await warmBatch(batch, env);
  },

  scheduled(controller, env, ctx) {
    return worker.scheduled(controller, instrumentEnv(env, "other"), ctx);
  },
} satisfies ExportedHandler<Env>;
