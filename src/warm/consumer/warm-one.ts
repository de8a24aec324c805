import type { Cache } from "../../cache/kv";
import { classifyFailure, DeferError } from "../../errors";
import type { Budget } from "../../lib/budget";
import { fetchAuthorWorks, worstCaseSubrequests } from "../../sources";
import { isFreshEnough, markerKey, type ProcessedMarker } from "../marker";
import type { WarmMessage } from "../messages";
import { backoff, DEFER_DELAY_SECONDS, type Outcome, type WarmDeps } from "./types";

/**
 * Warms one author: skipped when its processed marker is fresh and deep enough, else every page from the
 * sources. Our own limits (budget, breakers, request slots) defer it; a source's verdict fails or retries it.
 */
export async function warmOne(
  body: WarmMessage,
  attempt: number,
  cache: Cache,
  subrequests: Budget,
  deps: WarmDeps,
): Promise<Outcome> {
  const marker = await cache.get<ProcessedMarker>(markerKey(body));
  if (marker && isFreshEnough(marker, body, deps.now())) return { kind: "skipped", body, marker };
  // Reserve this author's worst case so authors finish one by one instead of all starving together.
  const reservation = await subrequests.reserve(
    worstCaseSubrequests(deps.config, deps.rateLimiter !== undefined),
  );
  if (!reservation) {
    return { kind: "defer", body, delaySeconds: DEFER_DELAY_SECONDS, reason: "invocation budget reached" };
  }
  try {
    const result = await fetchAuthorWorks(body.authorName, {
      config: deps.config,
      fetch: deps.fetch,
      breakers: deps.breakers,
      rateLimiter: deps.rateLimiter,
      subrequests: reservation,
    });
    return { kind: "done", body, works: result.works, reports: result.reports, requests: result.requests };
  } catch (error) {
    return failureOutcome(error, { body, message: { attempts: attempt } }, deps);
  } finally {
    reservation.release();
  }
}

/** What a thrown error means for one item: our own limits defer it, a source's verdict fails or retries it. */
export function failureOutcome(
  error: unknown,
  { body, message }: { body: WarmMessage; message: { attempts: number } },
  deps: WarmDeps,
): Outcome {
  const attempt = message.attempts;
  if (error instanceof DeferError) {
    const delaySeconds = Math.max(DEFER_DELAY_SECONDS, error.retryAfterSeconds ?? 0);
    const reason = error.code === "budget_exhausted" ? "invocation budget reached" : error.message;
    return { kind: "defer", body, delaySeconds, reason };
  }
  const failure = classifyFailure(error);
  if (failure.kind === "permanent")
    return { kind: "failed", body, code: failure.code, message: failure.message };
  return {
    kind: "retry",
    body,
    code: failure.code,
    message: failure.message,
    delaySeconds: backoff(deps.config, attempt, failure.retryAfterSeconds, deps.random),
    attempt,
  };
}
