import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { loadConfig } from "../config";
import { AppError } from "../errors";
import type { AppEnv } from "./context";
import { dashboardPage } from "./dashboard";
import { healthApi } from "./health";
import { jobsApi } from "./jobs";
import { warmingApi } from "./warming";

export interface AppOptions {
  /** Outbound fetch for cache misses; tests inject the book-API stand-in here. */
  fetch?: typeof fetch;
}

/** The HTTP side: one sub-app per resource, one error handler, JSON errors everywhere. */
export function createApp(options: AppOptions = {}) {
  const app = new Hono<AppEnv>();
  app.use("*", async (c, next) => {
    c.set("config", loadConfig(c.env));
    c.set("fetch", options.fetch ?? ((input, init) => fetch(input, init)));
    const started = Date.now();
    await next();
    console.log(
      JSON.stringify({
        msg: "request",
        method: c.req.method,
        path: c.req.path,
        status: c.res.status,
        durationMs: Date.now() - started,
      }),
    );
  });
  app.route("/api/jobs", jobsApi);
  app.route("/api/warming", warmingApi);
  app.route("/health", healthApi);
  app.get("/", (c) => c.html(dashboardPage()));
  app.notFound((c) =>
    c.json({ error: { code: "not_found", message: `no route for ${c.req.method} ${c.req.path}` } }, 404),
  );
  app.onError((error, c) => {
    if (error instanceof AppError) {
      if (error.httpStatus >= 500)
        console.error(JSON.stringify({ msg: "request failed", code: error.code, error: error.message }));
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
