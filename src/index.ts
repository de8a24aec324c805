import { createApp } from "./api/app";
import { loadConfig } from "./config";
import { wakeUnfinishedLifecycles } from "./jobs/lifecycle";
import { REFRESH_CRON, runScheduledRefresh } from "./refresh/schedule";
import { handleWarmBatch } from "./warm/consumer";
import { consumerDeps, isDeadLetterBatch } from "./warm/deps";
import { handleDeadLetterBatch } from "./warm/dlq";
import type { WarmMessage } from "./warm/messages";
import { sweep } from "./warm/sweeper";

// Only handlers, Durable Object and Workflow classes may be exported from the main module (workerd rejects others).
export { ProviderRateLimiter } from "./sources/rate-limiter-do";
export { JobWorkflow } from "./workflows/job-workflow";

const app = createApp();

export default {
  fetch(request, env, ctx) {
    return app.fetch(request, env, ctx);
  },

  async queue(batch, env) {
    const config = loadConfig(env);
    if (isDeadLetterBatch(batch)) await handleDeadLetterBatch(batch, env, { config, now: Date.now });
    else await handleWarmBatch(batch, env, consumerDeps(env, config));
  },

  async scheduled(controller, env, ctx) {
    const config = loadConfig(env);
    // Each cron in wrangler.toml [triggers] is one job: the hourly refresh, else the 5-minute sweep.
    if (controller.cron === REFRESH_CRON) {
      ctx.waitUntil(runScheduledRefresh(env, config, Date.now()));
      return;
    }
    ctx.waitUntil(
      sweep(env, { config, now: Date.now }).then(() => wakeUnfinishedLifecycles(env, config, Date.now())),
    );
  },
} satisfies ExportedHandler<Env, WarmMessage | unknown>;
