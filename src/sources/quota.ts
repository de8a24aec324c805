/**
 * A provider's daily request quota, as the provider Durable Object keeps it: requests counted per quota
 * day, the day named and ended in the provider's own time zone (Google's resets at midnight Pacific time,
 * DST included), and "exhausted until" for when the provider itself says the quota is spent.
 */
export interface QuotaState {
  /** The quota day this count belongs to (YYYY-MM-DD in the quota's time zone). */
  day: string;
  used: number;
  /** The provider said the day's quota is spent: no request before this instant (epoch ms). */
  exhaustedUntil: number | null;
}

export interface QuotaPolicy {
  /** Requests per quota day; 0 = unlimited. */
  limit: number;
  timeZone: string;
}

export interface QuotaGrant {
  granted: boolean;
  used: number;
  limit: number;
  /** When the quota day ends (epoch ms). */
  resetAt: number;
  state: QuotaState;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** The wall-clock fields of `instant` in `timeZone`. */
function wallClock(instant: number, timeZone: string) {
  const parts = Object.fromEntries(
    formatter(timeZone)
      .formatToParts(new Date(instant))
      .map((p) => [p.type, p.value]),
  );
  return {
    year: Number(parts.year),
    month: Number(parts.month),
    day: Number(parts.day),
    hour: Number(parts.hour),
    minute: Number(parts.minute),
    second: Number(parts.second),
  };
}

/** How far `timeZone`'s wall clock is ahead of UTC at `instant` (ms; negative west of Greenwich). */
function offsetAt(instant: number, timeZone: string): number {
  const w = wallClock(instant, timeZone);
  const asUtc = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  return asUtc - Math.floor(instant / 1000) * 1000;
}

/** The quota day of `instant`: its date in `timeZone`. */
export function quotaDay(instant: number, timeZone: string): string {
  const w = wallClock(instant, timeZone);
  return `${w.year}-${String(w.month).padStart(2, "0")}-${String(w.day).padStart(2, "0")}`;
}

/** The next midnight in `timeZone` after `instant` (epoch ms), right across DST changes. */
export function nextMidnight(instant: number, timeZone: string): number {
  const w = wallClock(instant, timeZone);
  const midnightWall = Date.UTC(w.year, w.month - 1, w.day + 1);
  // The offset at midnight may differ from now's (a DST change during the day): settle it in two steps.
  let guess = midnightWall - offsetAt(instant, timeZone);
  guess = midnightWall - offsetAt(guess, timeZone);
  return guess;
}

/**
 * Counts one request against the day's quota: a new day starts from zero; past the limit, or while the
 * provider has said the quota is spent, the request is refused.
 */
export function takeQuota(saved: QuotaState | null, policy: QuotaPolicy, now: number): QuotaGrant {
  const day = quotaDay(now, policy.timeZone);
  const resetAt = nextMidnight(now, policy.timeZone);
  const state: QuotaState =
    saved && saved.day === day
      ? { ...saved }
      : { day, used: 0, exhaustedUntil: saved?.exhaustedUntil ?? null };
  if (state.exhaustedUntil !== null && state.exhaustedUntil <= now) state.exhaustedUntil = null;
  const spent = state.exhaustedUntil !== null || (policy.limit > 0 && state.used >= policy.limit);
  if (!spent) state.used++;
  return { granted: !spent, used: state.used, limit: policy.limit, resetAt, state };
}

/** The provider said the quota is spent: nothing more until the end of its quota day. */
export function exhaustQuota(saved: QuotaState | null, policy: QuotaPolicy, now: number): QuotaState {
  const day = quotaDay(now, policy.timeZone);
  const state: QuotaState =
    saved && saved.day === day ? { ...saved } : { day, used: 0, exhaustedUntil: null };
  return { ...state, exhaustedUntil: nextMidnight(now, policy.timeZone) };
}

/** What /health and progress show: used of limit, and when the day resets. */
export function quotaStatus(saved: QuotaState | null, policy: QuotaPolicy, now: number) {
  const day = quotaDay(now, policy.timeZone);
  const current = saved && saved.day === day ? saved : null;
  const exhausted =
    (current?.exhaustedUntil ?? saved?.exhaustedUntil ?? 0) > now ||
    (policy.limit > 0 && (current?.used ?? 0) >= policy.limit);
  return {
    used: current?.used ?? 0,
    limit: policy.limit === 0 ? null : policy.limit,
    exhausted,
    resetAt: new Date(nextMidnight(now, policy.timeZone)).toISOString(),
  };
}
