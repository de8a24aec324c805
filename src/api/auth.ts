import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import type { Config } from "../config";
import { readLinkVersion } from "../db/read-links";
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

function unauthorized(message: string): AppError {
  return new AppError({ code: "unauthorized", message, httpStatus: 401, kind: "permanent" });
}

function notConfigured(): AppError {
  return new AppError({
    code: "auth_not_configured",
    message:
      "API_TOKEN is not set on this deployment; uploads and job data are refused until it is (wrangler secret put API_TOKEN)",
    httpStatus: 503,
    kind: "permanent",
  });
}

function bearer(c: Context<AppEnv>): string | null {
  const match = /^Bearer\s+(.+)$/i.exec((c.req.header("Authorization") ?? "").trim());
  return match?.[1] ?? null;
}

async function matchesAny(token: string, candidates: (string | undefined)[]): Promise<boolean> {
  for (const expected of candidates) if (expected && (await constantTimeEqual(token, expected))) return true;
  return false;
}

/**
 * Admin guard (uploads, redrive, invalidation, job control). With no API_TOKEN configured the service
 * refuses (503) rather than run open: a forgotten secret must not become an unauthenticated deployment.
 */
export const requireToken = createMiddleware<AppEnv>(async (c, next) => {
  const expected = c.var.config.API_TOKEN;
  if (!expected) throw notConfigured();
  const token = bearer(c);
  if (!token) throw unauthorized("missing bearer token: send Authorization: Bearer <API_TOKEN>");
  if (!(await constantTimeEqual(token, expected))) throw unauthorized("wrong bearer token");
  await next();
});

/**
 * Read guard for job data (lists, progress, failures, the dashboard's data): the admin token, the
 * read-only READ_TOKEN, or, on a route of one job, that job's read link (`?key=`).
 */
export const requireReader = createMiddleware<AppEnv>(async (c, next) => {
  const config = c.var.config;
  if (!config.API_TOKEN) throw notConfigured();
  const token = bearer(c);
  if (token) {
    if (!(await matchesAny(token, [config.API_TOKEN, config.READ_TOKEN])))
      throw unauthorized("wrong bearer token");
    return next();
  }
  const key = c.req.query("key");
  const jobId = c.req.param("id");
  if (key && jobId && (await isJobReadKey(c.env.DB, config, jobId, key))) return next();
  throw unauthorized(
    key
      ? "this read link is not valid for this job (wrong, or revoked)"
      : "job data needs a token: Authorization: Bearer <API_TOKEN or READ_TOKEN>, or the job's read link",
  );
});

async function linkSecret(config: Config): Promise<CryptoKey | null> {
  const secret =
    config.JOB_LINK_SECRET ?? (config.API_TOKEN ? `kindling-job-link:${config.API_TOKEN}` : null);
  if (!secret) return null;
  return crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
}

/** The capability in a job's read link: an HMAC of (job id, link version), base64url, 128 bits. */
export async function jobReadKey(config: Config, jobId: string, version: number): Promise<string | null> {
  const key = await linkSecret(config);
  if (!key) return null;
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(`${jobId}.${version}`)));
  return btoa(String.fromCharCode(...mac.subarray(0, 16)))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
}

async function isJobReadKey(db: D1Database, config: Config, jobId: string, key: string): Promise<boolean> {
  if (key.length > 64 || !/^[0-9a-f-]{36}$/i.test(jobId)) return false;
  const version = await readLinkVersion(db, jobId);
  if (version === null) return false;
  const expected = await jobReadKey(config, jobId, version);
  return expected !== null && (await constantTimeEqual(key, expected));
}

/** The job's read link: progress (and failures) of that job only, no token needed. */
export async function jobReadLinks(config: Config, jobId: string, version: number) {
  const key = await jobReadKey(config, jobId, version);
  const suffix = key ? `?key=${key}` : "";
  return { progress: `/api/jobs/${jobId}${suffix}`, failures: `/api/jobs/${jobId}/failures${suffix}` };
}

/** A created job's answer with its read links signed with the job row's link version (a replay may follow a revoke). */
export async function withReadLinks<T extends { jobId: string; links: object }>(
  config: Config,
  created: T,
  version: number,
): Promise<T> {
  return { ...created, links: { ...created.links, ...(await jobReadLinks(config, created.jobId, version)) } };
}
