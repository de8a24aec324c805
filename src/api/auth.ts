import { createMiddleware } from "hono/factory";
import { AppError } from "../errors";
import type { AppEnv } from "./context";

const encoder = new TextEncoder();

/** Compares two strings in time that does not depend on where they differ. */
async function constantTimeEqual(a: string, b: string): Promise<boolean> {
  const [da, db] = await Promise.all([
    crypto.subtle.digest("SHA-256", encoder.encode(a)),
    crypto.subtle.digest("SHA-256", encoder.encode(b)),
  ]);
  const x = new Uint8Array(da);
  const y = new Uint8Array(db);
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

/**
 * Bearer-token guard for routes that change state. With no API_TOKEN configured the service refuses
 * (503) rather than run open: a forgotten secret must not become an unauthenticated deployment.
 */
export const requireToken = createMiddleware<AppEnv>(async (c, next) => {
  const expected = c.var.config.API_TOKEN;
  if (!expected) {
    throw new AppError({
      code: "auth_not_configured",
      message:
        "API_TOKEN is not set on this deployment; uploads are refused until it is (wrangler secret put API_TOKEN)",
      httpStatus: 503,
      kind: "permanent",
    });
  }
  const header = c.req.header("Authorization") ?? "";
  const match = /^Bearer\s+(.+)$/i.exec(header.trim());
  if (!match?.[1]) {
    throw new AppError({
      code: "unauthorized",
      message: "missing bearer token: send Authorization: Bearer <API_TOKEN>",
      httpStatus: 401,
      kind: "permanent",
    });
  }
  if (!(await constantTimeEqual(match[1], expected))) {
    throw new AppError({
      code: "unauthorized",
      message: "wrong bearer token",
      httpStatus: 401,
      kind: "permanent",
    });
  }
  await next();
});
