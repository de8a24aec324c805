import { createApp } from "./api/app";
import { loadConfig } from "./config";
import { isolateBreakers } from "./sources";
import { durableRateLimiter } from "./sources/rate-limit";
import { handleWarmBatch } from "./warm/consumer";
import { handleDeadLetterBatch } from "./warm/dlq";
import type { WarmMessage } from "./warm/messages";
import { sweep } from "./warm/sweeper";

export { ProviderRateLimiter } from "./sources/rate-limiter-do";

const app = createApp();

export const WARM_QUEUE_NAME = "author-warming-queue";
export const DEAD_LETTER_QUEUE_NAME = "author-warming-dlq";

export default {
  fetch: app.fetch,

  async queue(batch, env) {
    const config = loadConfig(env);
    if (batch.queue.startsWith(DEAD_LETTER_QUEUE_NAME)) {
      await handleDeadLetterBatch(batch, env, { config, now: Date.now });
      return;
    }
    await handleWarmBatch(batch, env, {
      config,
      fetch: (input, init) => fetch(input, init),
      now: Date.now,
      random: Math.random,
      breakers: isolateBreakers(config),
      rateLimiter: durableRateLimiter(env.RATE_LIMITER, config),
    });
  },

  async scheduled(_controller, env, ctx) {
    ctx.waitUntil(sweep(env, { config: loadConfig(env), now: Date.now }));
  },
} satisfies ExportedHandler<Env, WarmMessage | unknown>;
