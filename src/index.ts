import { createApp } from "./api/app";
import { loadConfig } from "./config";
import { isolateBreakers } from "./sources";
import { durableRateLimiter } from "./sources/rate-limit";
import { counters, modes } from "./testing/counters";
import { instrumentEnv, instrumentFetch } from "./testing/instrument";
import { handleWarmBatchNaively } from "./testing/naive";
import { handleWarmBatch } from "./warm/consumer";
import { handleDeadLetterBatch } from "./warm/dlq";
import type { WarmMessage } from "./warm/messages";
import { sweep } from "./warm/sweeper";

export { ProviderRateLimiter } from "./sources/rate-limiter-do";

const app = createApp();

// Only handlers and Durable Object classes may be exported from the main module (workerd rejects others).
const DEAD_LETTER_QUEUE_NAME = "author-warming-dlq";

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

export default {
  fetch(request, env, ctx) {
    const config = loadConfig(env);
    return app.fetch(request, config.TEST_HOOKS ? instrumentEnv(env) : env, ctx);
  },

  async queue(batch, rawEnv) {
    const config = loadConfig(rawEnv);
    const deadLetters = batch.queue.startsWith(DEAD_LETTER_QUEUE_NAME);
    const env = config.TEST_HOOKS ? instrumentEnv(rawEnv, deadLetters ? "other" : "warm-consumer") : rawEnv;
    if (deadLetters) {
      await handleDeadLetterBatch(batch, env, { config, now: Date.now });
      return;
    }
    const plainFetch: typeof fetch = (input, init) => fetch(input, init);
    const deps = {
      config,
      fetch: config.TEST_HOOKS ? instrumentFetch(plainFetch) : plainFetch,
      now: Date.now,
      random: Math.random,
      breakers: isolateBreakers(config),
      rateLimiter: durableRateLimiter(env.RATE_LIMITER, config),
    };
    if (config.TEST_HOOKS) {
      counters.consumerInvocations++;
      counters.consumerMessages += batch.messages.length;
      maybeCrash(batch.messages.length, "before processing");
      // Locally one warm batch runs at a time, so the difference is this invocation's own.
      const d1Before = counters.consumerD1Batches;
      if (modes.consumer === "naive") await handleWarmBatchNaively(batch, env, deps);
      else await handleWarmBatch(batch, env, deps);
      if (batch.messages.every(isFirstDelivery)) {
        counters.firstDeliveryInvocations++;
        counters.firstDeliveryD1Batches += counters.consumerD1Batches - d1Before;
      }
      maybeCrash(batch.messages.length, "after processing");
      return;
    }
    await handleWarmBatch(batch, env, deps);
  },

  async scheduled(_controller, env, ctx) {
    ctx.waitUntil(sweep(env, { config: loadConfig(env), now: Date.now }));
  },
} satisfies ExportedHandler<Env, WarmMessage | unknown>;
