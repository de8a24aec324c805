import type { Cache } from "../../cache/kv";
import type { Config } from "../../config";
import type { ProviderBreakers, RateLimiter, SourceReport } from "../../sources";
import type { Priority } from "../../sources/grant-scheduler";
import type { Work } from "../../sources/types";
import { retryDelaySeconds } from "../backoff";
import type { ProcessedMarker } from "../marker";
import type { WarmMessage } from "../messages";
import type { InvocationUsage } from "../usage";

export interface WarmDeps {
  config: Config;
  fetch: typeof fetch;
  now: () => number;
  random: () => number;
  breakers: ProviderBreakers;
  rateLimiter?: RateLimiter | undefined;
  cache?: Cache;
  /** This invocation's counters (set per invocation by the consumer): upstream tries land here. */
  usage?: InvocationUsage;
  /** Each job's priority, read by the job-state check (set per invocation): who asks for provider slots. */
  priorities?: ReadonlyMap<string, Priority> | undefined;
}

/** What warming one item came to; `record` turns each into its task's state change. */
export type Outcome =
  | { kind: "done"; body: WarmMessage; works: Work[]; reports: SourceReport[]; requests: number }
  | { kind: "skipped"; body: WarmMessage; marker: ProcessedMarker }
  | { kind: "failed"; body: WarmMessage; code: string; message: string }
  | { kind: "dead"; body: WarmMessage; code: string; message: string }
  | { kind: "retry"; body: WarmMessage; code: string; message: string; delaySeconds: number; attempt: number }
  | { kind: "defer"; body: WarmMessage; delaySeconds: number; reason: string };

export type Done = Extract<Outcome, { kind: "done" }>;

/** Messages deferred for lack of budget come back almost at once, as fresh messages. */
export const DEFER_DELAY_SECONDS = 1;

export function backoff(
  config: Config,
  attempt: number,
  retryAfterSeconds: number | undefined,
  random: () => number,
): number {
  return retryDelaySeconds({
    attempt,
    baseSeconds: config.RETRY_BASE_SECONDS,
    maxSeconds: config.RETRY_MAX_SECONDS,
    retryAfterSeconds,
    random,
  });
}
