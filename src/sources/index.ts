import type { Config } from "../config";
import { AppError, classifyFailure, DeferError, type FailureKind, UpstreamError } from "../errors";
import { CircuitBreaker } from "../lib/breaker";
import type { Allowance } from "../lib/budget";
import { fetchGoogleBooksWorks } from "./googlebooks";
import type { Requester } from "./grant-scheduler";
import type { UpstreamDeps } from "./http";
import { mergeWorks } from "./merge";
import { fetchOpenLibraryWorks, type SourceFetchResult } from "./openlibrary";
import { usesProviderObject } from "./rate-limit";
import type { UpstreamTally } from "./tally";
import { type BookQuery, type SourceName, toBookQuery, type Work } from "./types";

/**
 * Grants permission to call a provider within its global rate; may wait, or throw a transient error. The
 * requester (job and priority) decides the order among waiting callers; none: a public read miss.
 */
export interface RateLimiter {
  acquire(source: SourceName, requester?: Requester): Promise<void>;
  /** The provider said "slow down" (429/503 + Retry-After): hold every caller off for that long. */
  pause(source: SourceName, seconds: number): Promise<void>;
  /** The provider said its daily quota is spent: skip it for everyone until the quota day resets. */
  exhaust?(source: SourceName): Promise<number>;
}

export type ProviderBreakers = Record<SourceName, CircuitBreaker>;

export function createProviderBreakers(
  opts: { now?: () => number; failureThreshold?: number; coolDownMs?: number } = {},
): ProviderBreakers {
  return {
    openlibrary: new CircuitBreaker("openlibrary", opts),
    googlebooks: new CircuitBreaker("googlebooks", opts),
  };
}

let isolateBreakerSet: ProviderBreakers | undefined;

/** One set per isolate: a provider that is down for one consumer invocation is down for the next. */
export function isolateBreakers(config?: Config): ProviderBreakers {
  isolateBreakerSet ??= createProviderBreakers(
    config
      ? {
          failureThreshold: config.BREAKER_FAILURE_THRESHOLD,
          coolDownMs: config.BREAKER_COOLDOWN_SECONDS * 1000,
        }
      : {},
  );
  return isolateBreakerSet;
}

export interface SourcesContext {
  config: Config;
  fetch: typeof fetch;
  breakers: ProviderBreakers;
  rateLimiter?: RateLimiter | undefined;
  /** Whose work these requests are: the provider scheduler serves waiting requests by it. */
  requester?: Requester | undefined;
  /** Per-invocation subrequest budget; every upstream request (and rate-limiter call) takes from it. */
  subrequests?: Allowance | undefined;
  /** Counts every try per provider (requests, errors, 429s) for the invocation's analytics and cost. */
  tally?: UpstreamTally | undefined;
}

export interface SourceReport {
  source: SourceName;
  ok: boolean;
  works: number;
  requests: number;
  truncated: boolean;
  error?: { code: string; kind: FailureKind; message: string };
}

export interface AuthorWorksResult {
  works: Work[];
  reports: SourceReport[];
  warnings: string[];
  requests: number;
}

const OPEN_LIBRARY_PAGE = 100;
const GOOGLE_BOOKS_PAGE = 40;

/**
 * The most subrequests one author can need: every page of every enabled source, each request counted
 * twice when it first asks the rate limiter (a Durable Object call). Inline retries draw on what others
 * leave over, so they are not reserved.
 */
export function worstCaseSubrequests(config: Config, withRateLimiter: boolean): number {
  return enabledSources(config).reduce((n, s) => {
    const pages = Math.ceil(
      config.MAX_WORKS_PER_AUTHOR / (s === "openlibrary" ? OPEN_LIBRARY_PAGE : GOOGLE_BOOKS_PAGE),
    );
    return n + pages * (withRateLimiter && usesProviderObject(config, s) ? 2 : 1);
  }, 0);
}

export function enabledSources(config: Config): SourceName[] {
  const sources: SourceName[] = [];
  if (config.OPENLIBRARY_ENABLED) sources.push("openlibrary");
  if (config.GOOGLE_BOOKS_ENABLED) sources.push("googlebooks");
  return sources;
}

export function upstreamDeps(ctx: SourcesContext, counter: { requests: number }): UpstreamDeps {
  return {
    fetch: ctx.fetch,
    userAgent: ctx.config.userAgent,
    timeoutMs: ctx.config.UPSTREAM_TIMEOUT_MS,
    beforeRequest: async (source) => {
      // A provider with a rate limit costs a second subrequest: the call to its Durable Object.
      ctx.subrequests?.take(ctx.rateLimiter && usesProviderObject(ctx.config, source) ? 2 : 1);
      const breaker = ctx.breakers[source];
      if (breaker.retryInMs() > 0) {
        throw new DeferError({
          source,
          code: "breaker_open",
          message: `${source} circuit breaker is open`,
          retryAfterSeconds: Math.ceil(breaker.retryInMs() / 1000),
        });
      }
      await ctx.rateLimiter?.acquire(source, ctx.requester);
      if (!breaker.tryAcquire()) {
        throw new DeferError({
          source,
          code: "breaker_open",
          message: `${source} circuit breaker is half-open and its probe is in flight`,
          retryAfterSeconds: Math.max(1, Math.ceil(breaker.retryInMs() / 1000)),
        });
      }
      counter.requests++;
    },
    onTry: (source, status) => ctx.tally?.record(source, status),
    afterResponse: (source, outcome) => {
      const breaker = ctx.breakers[source];
      // A 4xx means the provider is up and answering, and a 429 is "slow down" (the rate limiter's
      // pause handles it): only outages (5xx, timeouts, network errors) trip the breaker.
      const providerHealthy = outcome.ok || (outcome.status !== null && outcome.status < 500);
      if (providerHealthy) breaker.recordSuccess();
      else breaker.recordFailure();
    },
  };
}

async function fetchFrom(
  source: SourceName,
  query: BookQuery,
  ctx: SourcesContext,
  deps: UpstreamDeps,
  maxWorks: number,
): Promise<SourceFetchResult> {
  if (source === "openlibrary") {
    return fetchOpenLibraryWorks(query, { baseUrl: ctx.config.OPENLIBRARY_BASE_URL, maxWorks }, deps);
  }
  return fetchGoogleBooksWorks(
    query,
    { baseUrl: ctx.config.GOOGLE_BOOKS_BASE_URL, maxWorks, apiKey: ctx.config.GOOGLE_BOOKS_API_KEY },
    deps,
  );
}

/**
 * Every enabled source for one author, concurrently and settled: one source failing while another
 * answers is a partial success. Only when every source fails does this throw, transient if any
 * failure was transient (so the message is retried), permanent otherwise.
 */
export async function fetchAuthorWorks(author: string, ctx: SourcesContext): Promise<AuthorWorksResult> {
  return fetchBooks({ author }, ctx, ctx.config.MAX_WORKS_PER_AUTHOR);
}

/** Books by ISBN or title (one page per source is plenty for a lookup), merged like an author's works. */
export async function searchBooks(
  query: BookQuery,
  ctx: SourcesContext,
  maxResults = 20,
): Promise<AuthorWorksResult> {
  return fetchBooks(query, ctx, maxResults);
}

async function fetchBooks(
  query: string | BookQuery,
  ctx: SourcesContext,
  maxWorks: number,
): Promise<AuthorWorksResult> {
  const bookQuery = toBookQuery(query);
  const sources = enabledSources(ctx.config);
  if (sources.length === 0) {
    throw new AppError({ code: "no_sources", message: "every book source is disabled", kind: "permanent" });
  }
  const counters = sources.map(() => ({ requests: 0 }));
  const settled = await Promise.allSettled(
    sources.map((source, i) =>
      fetchFrom(source, bookQuery, ctx, upstreamDeps(ctx, counters[i] as { requests: number }), maxWorks),
    ),
  );
  const reports: SourceReport[] = [];
  const warnings: string[] = [];
  const works = [];
  const failures: unknown[] = [];
  for (const [i, result] of settled.entries()) {
    const source = sources[i] as SourceName;
    const requests = counters[i]?.requests ?? 0;
    if (result.status === "fulfilled") {
      works.push(...result.value.works);
      warnings.push(...result.value.warnings);
      reports.push({
        source,
        ok: true,
        works: result.value.works.length,
        requests,
        truncated: result.value.truncated,
      });
      continue;
    }
    failures.push(result.reason);
    const failure = classifyFailure(result.reason);
    if (result.reason instanceof UpstreamError && result.reason.retryAfterSeconds && ctx.rateLimiter) {
      const status = result.reason.upstreamStatus;
      if (status === 429 || status === 503)
        await ctx.rateLimiter.pause(source, result.reason.retryAfterSeconds);
    }
    reports.push({
      source,
      ok: false,
      works: 0,
      requests,
      truncated: false,
      error: { code: failure.code, kind: failure.kind, message: failure.message },
    });
  }
  const requests = counters.reduce((sum, c) => sum + c.requests, 0);
  // Out of budget is not a verdict on the author: defer the whole author rather than keep half of it.
  const budgetFailure = failures.find((f) => f instanceof DeferError && f.code === "budget_exhausted");
  if (budgetFailure) throw budgetFailure;
  if (failures.length === sources.length) {
    const classified = failures.map((f) => ({ error: f, failure: classifyFailure(f) }));
    // Nothing was asked upstream: our own breaker or rate limiter held every request back.
    if (failures.every((f) => f instanceof DeferError)) {
      throw new DeferError({
        code: "providers_held_back",
        message: classified.map((c) => c.failure.message).join("; "),
        retryAfterSeconds: Math.max(1, ...classified.map((c) => c.failure.retryAfterSeconds ?? 1)),
      });
    }
    const transient = classified.filter((c) => c.failure.kind === "transient");
    if (transient.length > 0) {
      const retryAfter = Math.max(0, ...transient.map((c) => c.failure.retryAfterSeconds ?? 0));
      const first = transient[0]?.failure;
      throw new AppError({
        code: first?.code ?? "upstream_unavailable",
        message: classified.map((c) => c.failure.message).join("; "),
        kind: "transient",
        httpStatus: 502,
        retryAfterSeconds: retryAfter || undefined,
        details: { reports },
      });
    }
    throw classified[0]?.error;
  }
  return { works: mergeWorks(works), reports, warnings, requests };
}
