import type { z } from "zod";
import { parseRetryAfter, QuotaExhaustedError, UpstreamError, upstreamStatusError } from "../errors";
import { nextMidnight } from "./quota";
import type { SourceName } from "./types";

/** What every source client needs from its caller: injected so tests and budgets control I/O. */
export interface UpstreamDeps {
  fetch: typeof fetch;
  userAgent: string;
  timeoutMs: number;
  /** Awaited before every request: the place for rate limiting, breakers and per-invocation budgets. */
  beforeRequest?: (source: SourceName) => Promise<void>;
  /** Told each call's outcome once, after its inline retries (breaker bookkeeping). */
  afterResponse?: (source: SourceName, outcome: { ok: boolean; status: number | null }) => void;
  /** Told every try's status (null: no answer), for the invocation's per-provider request counts. */
  onTry?: (source: SourceName, status: number | null) => void;
  /** Extra tries for a transient failure without Retry-After (a blip), before the attempt gives up. */
  inlineRetries?: number;
  sleep?: (ms: number) => Promise<void>;
}

const INLINE_RETRY_BASE_MS = 200;

/**
 * Google's answer when the day's quota is spent: 403 `dailyLimitExceeded`, or 429 RESOURCE_EXHAUSTED naming
 * the per-day limit. A 429 without it is the per-second "slow down", handled like any 429.
 */
const DAILY_LIMIT = /dailyLimitExceeded|quotaExceeded|per day/i;

function nextQuotaReset(source: SourceName): number {
  return nextMidnight(Date.now(), source === "googlebooks" ? "America/Los_Angeles" : "UTC");
}
const MAX_INLINE_RETRY_AFTER_SECONDS = 2;

/**
 * GETs and validates a JSON document, retrying a blip (5xx, timeout, network error or malformed body)
 * a couple of times with a short backoff, and waiting out a Retry-After of at most 2 s before trying
 * again. A longer Retry-After is not waited for here: the message goes back to the queue for at least
 * that long. Every try passes through `beforeRequest` again (rate limit, breaker, budget).
 */
export async function getJson<T extends z.ZodType>(
  source: SourceName,
  url: string,
  schema: T,
  deps: UpstreamDeps,
): Promise<z.infer<T>> {
  const retries = deps.inlineRetries ?? 2;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  // The breaker hears one outcome per call, not per try: a blip an inline retry absorbed is not
  // evidence of an outage, and one author whose query always fails must not trip it for everyone.
  const giveUp = (error: UpstreamError): never => {
    deps.afterResponse?.(source, { ok: false, status: error.upstreamStatus ?? null });
    throw error;
  };
  let lastFailure: UpstreamError | undefined;
  for (let attempt = 0; ; attempt++) {
    try {
      // Held back (breaker, local rate limit, budget): no request left, so nothing to tell the breaker.
      await deps.beforeRequest?.(source);
    } catch (error) {
      // A retry refused by the breaker must not hide the real failure: the call failed upstream.
      if (lastFailure) return giveUp(lastFailure);
      throw error;
    }
    try {
      const data = await getJsonOnce(source, url, schema, deps);
      deps.onTry?.(source, 200);
      deps.afterResponse?.(source, { ok: true, status: 200 });
      return data;
    } catch (error) {
      // Every try was a request: a provider's "day's quota spent" answer counts as its 429.
      deps.onTry?.(source, tryStatus(error));
      if (!(error instanceof UpstreamError)) throw error;
      if (error.kind !== "transient" || attempt >= retries) return giveUp(error);
      // A short Retry-After is waited out here (honoured, not shortened); a long one goes back to the
      // queue so the message is retried after at least that long.
      const wait =
        error.retryAfterSeconds === undefined
          ? INLINE_RETRY_BASE_MS * 2 ** attempt
          : error.retryAfterSeconds <= MAX_INLINE_RETRY_AFTER_SECONDS
            ? error.retryAfterSeconds * 1000
            : null;
      if (wait === null) return giveUp(error);
      lastFailure = error;
      await sleep(wait);
    }
  }
}

function tryStatus(error: unknown): number | null {
  if (error instanceof UpstreamError) return error.upstreamStatus ?? null;
  return error instanceof QuotaExhaustedError ? 429 : null;
}

/**
 * One GET of a JSON document, validated. Every failure becomes an UpstreamError whose `kind` says
 * whether retrying can help: network errors, timeouts, 5xx, 429 and malformed bodies are transient.
 */
async function getJsonOnce<T extends z.ZodType>(
  source: SourceName,
  url: string,
  schema: T,
  deps: UpstreamDeps,
): Promise<z.infer<T>> {
  let response: Response;
  try {
    response = await deps.fetch(url, {
      headers: { "User-Agent": deps.userAgent, Accept: "application/json" },
      signal: AbortSignal.timeout(deps.timeoutMs),
    });
  } catch (error) {
    const timedOut = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
    throw new UpstreamError({
      source,
      code: timedOut ? "upstream_timeout" : "upstream_network_error",
      message: timedOut
        ? `${source} did not answer within ${deps.timeoutMs} ms`
        : `${source} unreachable: ${String(error)}`,
      kind: "transient",
      cause: error,
    });
  }
  if (!response.ok) {
    if (source === "googlebooks" && (response.status === 429 || response.status === 403)) {
      const text = await response.text().catch(() => "");
      if (DAILY_LIMIT.test(text))
        throw new QuotaExhaustedError({ source, resetAt: nextQuotaReset(source), byProvider: true });
    } else {
      // Drain the body so the connection can be reused.
      await response.body?.cancel();
    }
    throw upstreamStatusError(source, response.status, parseRetryAfter(response.headers.get("Retry-After")));
  }
  let body: unknown;
  try {
    body = await response.json();
  } catch (error) {
    throw new UpstreamError({
      source,
      code: "upstream_malformed",
      message: `${source} sent a body that is not JSON`,
      kind: "transient",
      upstreamStatus: response.status,
      cause: error,
    });
  }
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    throw new UpstreamError({
      source,
      code: "upstream_malformed",
      message: `${source} sent JSON of an unexpected shape: ${parsed.error.issues[0]?.message ?? "invalid"}`,
      kind: "transient",
      upstreamStatus: response.status,
    });
  }
  return parsed.data;
}
