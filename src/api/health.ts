import { Hono } from "hono";
import { describeRoute } from "hono-openapi";
import { isolateKvBreaker } from "../cache/kv";
import { deadLetterCountStatement } from "../db/jobs";
import type { AppEnv } from "./context";
import { providerQuotas } from "./quotas";

async function timed<T>(fn: () => Promise<T>): Promise<{ ok: boolean; ms: number; error?: string }> {
  const started = Date.now();
  try {
    await fn();
    return { ok: true, ms: Date.now() - started };
  } catch (error) {
    return { ok: false, ms: Date.now() - started, error: String(error) };
  }
}

const healthDoc = describeRoute({
  tags: ["health"],
  summary: "D1, KV and queue checks, breakers and the dead-letter alert (no token)",
  responses: { 200: { description: "All checks pass" }, 503: { description: "Degraded" } },
});

/** Do D1, KV and the queue bindings answer? 200 when all do, 503 otherwise. */
export const healthApi = new Hono<AppEnv>().get("/", healthDoc, async (c) => {
  let deadLetters = 0;
  const quotasRead = providerQuotas(c.env, c.var.config);
  const [d1, kv] = await Promise.all([
    timed(async () => {
      const row = await deadLetterCountStatement(c.env.DB).first<{ n: number }>();
      deadLetters = Number(row?.n ?? 0);
    }),
    // Raw KV on purpose: health reports KV itself, not the fail-open layer that hides its failures.
    timed(() => c.env.CACHE.get("health:probe")),
  ]);
  const queues = {
    ok:
      typeof c.env.WARM_QUEUE?.sendBatch === "function" &&
      typeof c.env.ISBN_QUEUE?.sendBatch === "function" &&
      typeof c.env.PRIORITY_QUEUE?.sendBatch === "function" &&
      typeof c.env.DLQ?.send === "function",
  };
  const ok = d1.ok && kv.ok && queues.ok;
  const threshold = c.var.config.DLQ_ALERT_THRESHOLD;
  return c.json(
    {
      status: ok ? "ok" : "degraded",
      checks: { d1, kv, queues },
      deadLetters: { count: deadLetters, threshold, alert: deadLetters > threshold },
      breakers: {
        /** The read API's KV breaker and the warmer's: readers cannot open the warmer's. */
        kv: c.var.kvBreaker.snapshot(),
        kvWarmer: isolateKvBreaker.snapshot(),
        openlibrary: c.var.providerBreakers.openlibrary.snapshot(),
        googlebooks: c.var.providerBreakers.googlebooks.snapshot(),
      },
      /** Each provider's daily quota: used, limit (null = unlimited), exhausted, resetAt. */
      quotas: await quotasRead,
    },
    ok ? 200 : 503,
  );
});
