import type { Context } from "hono";
import { recordCacheOutcomeStatement } from "../db/cache-stats";
import type { AppEnv } from "./context";

/**
 * Counts one request's cache outcome into its hour's row, after the response (waitUntil), so the
 * read path never waits on the analytics write. A failed write loses one count, never a request.
 */
export function recordCacheOutcome(c: Context<AppEnv>, route: string, hit: boolean): void {
  const write = recordCacheOutcomeStatement(
    c.env.DB,
    route,
    { hits: hit ? 1 : 0, misses: hit ? 0 : 1 },
    Date.now(),
  )
    .run()
    .catch((error: unknown) =>
      console.warn(JSON.stringify({ msg: "cache stats write failed", error: String(error) })),
    );
  try {
    c.executionCtx.waitUntil(write);
  } catch {
    // No execution context (a direct app.fetch in tests): the promise still runs to completion.
  }
}
