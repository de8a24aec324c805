/** Queues accept delays up to 12 hours. */
export const MAX_QUEUE_DELAY_SECONDS = 43_200;

/**
 * Exponential backoff with "equal jitter": half the exponential delay is fixed, half is random, so
 * retries spread out but never come back sooner than half the nominal delay. A Retry-After from
 * upstream is a floor, never shortened by jitter.
 */
export function retryDelaySeconds(opts: {
  attempt: number;
  baseSeconds: number;
  maxSeconds: number;
  retryAfterSeconds?: number | undefined;
  random?: () => number;
}): number {
  const random = opts.random ?? Math.random;
  const exponent = Math.max(0, opts.attempt - 1);
  const nominal = Math.min(opts.maxSeconds, opts.baseSeconds * 2 ** exponent);
  const jittered = nominal / 2 + random() * (nominal / 2);
  const floor = opts.retryAfterSeconds ?? 0;
  return Math.min(MAX_QUEUE_DELAY_SECONDS, Math.ceil(Math.max(jittered, floor)));
}
