import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { createCache, isolateReaderKvBreaker } from "../cache/kv";
import { publicReadAllowance } from "../cache/read-allowance";
import { loadConfig } from "../config";
import { AppError } from "../errors";
import { drainUnreadBody } from "../ingest/upload-body";
import type { CircuitBreaker } from "../lib/breaker";
import { Budget } from "../lib/budget";
import { isolateBreakers, type ProviderBreakers } from "../sources";
import { durableRateLimiter } from "../sources/rate-limit";
import { analyticsApi } from "./analytics";
import { authorsApi } from "./authors";
import { booksApi } from "./books";
import { cacheAdminApi } from "./cache-admin";
import type { AppEnv } from "./context";
import { healthApi } from "./health";
import { jobsApi } from "./jobs";
import { openApiHandler } from "./openapi";
import { warmingApi } from "./warming";

export interface AppOptions {
  /** Outbound fetch for cache misses; tests inject the book-API stand-in here. */
  fetch?: typeof fetch;
  /** Breakers default to one set per isolate; tests pass their own with a controlled clock. */
  kvBreaker?: CircuitBreaker;
  providerBreakers?: ProviderBreakers;
  /** fetch for the Analytics Engine SQL API; tests answer for it in process. */
  analyticsFetch?: typeof fetch;
}

/** An interactive read waits at most this long for an upstream slot before answering 503. */
const READ_MAX_SLOT_WAIT_MS = 5_000;

/** The HTTP side: one sub-app per resource, one error handler, JSON errors everywhere. */
export function createApp(options: AppOptions = {}) {
  const app = new Hono<AppEnv>();
  app.use("*", async (c, next) => {
    const config = loadConfig(c.env);
    const kvBreaker = options.kvBreaker ?? isolateReaderKvBreaker;
    const providerBreakers = options.providerBreakers ?? isolateBreakers(config);
    const cache = createCache(c.env.CACHE, { breaker: kvBreaker });
    c.set("config", config);
    c.set("cache", cache);
    c.set("kvBreaker", kvBreaker);
    c.set("providerBreakers", providerBreakers);
    c.set("reader", {
      cache,
      config,
      fetch: options.fetch ?? ((input, init) => fetch(input, init)),
      breakers: providerBreakers,
      rateLimiter: c.env.RATE_LIMITER
        ? durableRateLimiter(c.env.RATE_LIMITER, config, { maxWaitMs: READ_MAX_SLOT_WAIT_MS })
        : undefined,
      subrequests: new Budget("subrequest", config.SUBREQUEST_BUDGET),
      allowance: c.env.RATE_LIMITER
        ? publicReadAllowance(c.env.RATE_LIMITER, config, c.req.header("CF-Connecting-IP") ?? "unknown")
        : undefined,
    });
    const started = Date.now();
    await next();
    const { hits, misses, errors, bypassed } = cache.stats;
    console.log(
      JSON.stringify({
        msg: "request",
        method: c.req.method,
        path: c.req.path,
        status: c.res.status,
        durationMs: Date.now() - started,
        cache: { hits, misses, errors, bypassed },
      }),
    );
  });
  app.route("/api/jobs", jobsApi);
  app.route("/api/warming", warmingApi);
  app.route("/api/books", booksApi);
  app.route("/api/authors", authorsApi);
  app.route("/api/cache", cacheAdminApi);
  app.route("/api/analytics", analyticsApi(options.analyticsFetch));
  app.route("/health", healthApi);
  // The dashboard (/, /jobs, /job?id=) and the API reference (/docs) are static assets (public/).
  app.get("/openapi.json", openApiHandler(app));
  app.notFound((c) =>
    c.json({ error: { code: "not_found", message: `no route for ${c.req.method} ${c.req.path}` } }, 404),
  );
  app.onError(async (error, c) => {
    await drainUnreadBody(c.req.raw);
    if (error instanceof AppError) {
      if (error.httpStatus >= 500)
        console.error(JSON.stringify({ msg: "request failed", code: error.code, error: error.message }));
      if (error.retryAfterSeconds !== undefined) c.header("Retry-After", String(error.retryAfterSeconds));
      return c.json(
        {
          error: {
            code: error.code,
            message: error.message,
            ...(error.details ? { details: error.details } : {}),
          },
        },
        error.httpStatus as 400,
      );
    }
    if (error instanceof HTTPException) {
      return c.json({ error: { code: "http_error", message: error.message } }, error.status);
    }
    console.error(
      JSON.stringify({
        msg: "unhandled error",
        path: c.req.path,
        error: String(error),
        stack: (error as Error).stack,
      }),
    );
    return c.json({ error: { code: "internal_error", message: "internal error" } }, 500);
  });
  return app;
}
