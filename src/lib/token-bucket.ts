/** A token bucket's persisted state: tokens left and when they were last counted. */
export interface BucketState {
  tokens: number;
  at: number;
}

export interface BucketGrant {
  granted: boolean;
  /** When refused: how long until one token is back. */
  retryAfterMs: number;
  state: BucketState;
}

/**
 * Takes one token from a bucket holding at most `capacity` that refills `capacity` tokens per minute,
 * so a client may burst its whole minute's allowance and then goes at the refill pace. Pure: the
 * caller persists the returned state.
 */
export function takeToken(previous: BucketState | null, capacity: number, now: number): BucketGrant {
  const perMs = capacity / 60_000;
  const start = previous ?? { tokens: capacity, at: now };
  const tokens = Math.min(capacity, start.tokens + Math.max(0, now - start.at) * perMs);
  if (tokens >= 1) return { granted: true, retryAfterMs: 0, state: { tokens: tokens - 1, at: now } };
  const retryAfterMs = perMs > 0 ? Math.ceil((1 - tokens) / perMs) : 60_000;
  return { granted: false, retryAfterMs, state: { tokens, at: now } };
}
