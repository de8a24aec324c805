import { classifyFailure, DeferError } from "../../errors";
import type { WarmMessage } from "../messages";
import { backoff, DEFER_DELAY_SECONDS, type Outcome, type WarmDeps } from "./types";

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
