import { cacheKeys, TTL_SECONDS } from "../../../src/cache/keys";
import type { Config } from "../../../src/config";
import { completeJobsStatement, markJobsRunningStatement } from "../../../src/db/jobs";
import { runSteps, writeOnly } from "../../../src/db/step";
import { claimTasks, finishTasks, insertChildTasks, markQueued } from "../../../src/db/tasks";
import { upsertWorksStatements } from "../../../src/db/works";
import { classifyFailure } from "../../../src/errors";
import { fetchAuthorWorks, type ProviderBreakers, type RateLimiter } from "../../../src/sources";
import { coAuthorsOf } from "../../../src/sources/merge";
import { retryDelaySeconds } from "../../../src/warm/backoff";
import { markerFor } from "../../../src/warm/marker";
import { warmMessageFor, warmMessageSchema } from "../../../src/warm/messages";

/**
 * The original design, kept only to be measured against (benchmarks switch to it at runtime through the
 * instrumented entry's /__test/modes). It is correct, just naive: one message after another, one awaited KV put per key,
 * one D1 round trip per step, one `send()` per author or co-author.
 */

export async function handleWarmBatchNaively(
  batch: MessageBatch<unknown>,
  env: Env,
  deps: { config: Config; fetch: typeof fetch; breakers: ProviderBreakers; rateLimiter?: RateLimiter },
): Promise<void> {
  for (const message of batch.messages) {
    const parsed = warmMessageSchema.safeParse(message.body);
    if (!parsed.success) {
      message.ack();
      continue;
    }
    const body = parsed.data;
    try {
      const now = Date.now();
      const [, claimed] = await runSteps(env.DB, [
        writeOnly([markJobsRunningStatement(env.DB, [body.jobId], now)]),
        claimTasks(env.DB, [body], now),
      ]);
      if (claimed.length === 0) {
        message.ack();
        continue;
      }
      const result = await fetchAuthorWorks(body.authorName, {
        config: deps.config,
        fetch: deps.fetch,
        breakers: deps.breakers,
        rateLimiter: deps.rateLimiter,
      });
      for (const work of result.works) {
        if (work.isbn13) {
          await env.CACHE.put(cacheKeys.bookByIsbn(work.isbn13), JSON.stringify(work), {
            expirationTtl: TTL_SECONDS.bookByIsbn,
          });
        }
        await env.CACHE.put(
          cacheKeys.bookByTitle(work.title, work.authors[0] ?? body.authorName),
          JSON.stringify(work),
          {
            expirationTtl: TTL_SECONDS.bookByTitle,
          },
        );
      }
      await env.CACHE.put(
        cacheKeys.authorWorks(body.authorName),
        JSON.stringify({ author: body.authorName, works: result.works, updatedAt: new Date().toISOString() }),
        { expirationTtl: TTL_SECONDS.authorWorks },
      );
      const entries = result.works.map((work) => ({ authorKey: body.authorKey, work }));
      const upserts = upsertWorksStatements(env.DB, entries, now, TTL_SECONDS.bookByIsbn);
      if (upserts.length > 0) await env.DB.batch(upserts);
      if (body.depth + 1 <= body.maxDepth) {
        for (const co of coAuthorsOf(body.authorName, result.works)) {
          const child = {
            jobId: body.jobId,
            authorKey: co.key,
            authorName: co.name,
            depth: body.depth + 1,
            parentKey: body.authorKey,
          };
          const [inserted] = await runSteps(env.DB, [insertChildTasks(env.DB, [child], Date.now())]);
          for (const row of inserted) {
            await env.WARM_QUEUE.send(warmMessageFor({ ...row, max_depth: body.maxDepth, generation: 0 }));
            await runSteps(env.DB, [markQueued(env.DB, [child], Date.now())]);
          }
        }
      }
      const done = { jobId: body.jobId, authorKey: body.authorKey, status: "done" as const };
      await runSteps(env.DB, [
        finishTasks(env.DB, [{ ...done, worksCount: result.works.length }], Date.now()),
        writeOnly([completeJobsStatement(env.DB, [body.jobId], Date.now())]),
      ]);
      await env.CACHE.put(
        cacheKeys.processedMarker(body.authorName),
        JSON.stringify(markerFor(body, result.works.length, now)),
        {
          expirationTtl: TTL_SECONDS.processedMarker,
        },
      );
      message.ack();
    } catch (error) {
      const failure = classifyFailure(error);
      if (failure.kind === "permanent") {
        const failed = { jobId: body.jobId, authorKey: body.authorKey, status: "failed" as const };
        await runSteps(env.DB, [
          finishTasks(env.DB, [{ ...failed, error: `${failure.code}: ${failure.message}` }], Date.now()),
          writeOnly([completeJobsStatement(env.DB, [body.jobId], Date.now())]),
        ]);
        message.ack();
        continue;
      }
      message.retry({
        delaySeconds: retryDelaySeconds({
          attempt: message.attempts,
          baseSeconds: deps.config.RETRY_BASE_SECONDS,
          maxSeconds: deps.config.RETRY_MAX_SECONDS,
          retryAfterSeconds: failure.retryAfterSeconds,
        }),
      });
    }
  }
}
