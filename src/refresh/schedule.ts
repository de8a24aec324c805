import type { Config } from "../config";
import { listExpiringItems, openRefreshJob } from "../db/cached-items";
import { quotaReport } from "../sources/rate-limit";
import { refreshBound } from "./bound";
import { createRefreshJob } from "./create-job";

/** The refresh's cron (wrangler.toml `[triggers]`): hourly, at minute 7, off the 5-minute sweep's beat. */
export const REFRESH_CRON = "7 * * * *";

export interface RefreshRun {
  jobId: string | null;
  selected: number;
  /** The run's bound after the quotas (REFRESH_MAX_ITEMS at most). */
  bound: number;
  /** Why no job was created, or why the bound shrank. */
  reason: string | null;
}

const HOUR_MS = 3_600_000;

/**
 * One scheduled refresh: unless a refresh job is still open, select the items (authors' works lists, ISBN
 * items) whose entries expire within REFRESH_HORIZON_HOURS and that uploads asked for within
 * REFRESH_RECENT_DAYS, soonest first, at most the bound the daily quotas leave, and make them one
 * low-priority `refresh` job.
 */
export async function runScheduledRefresh(env: Env, config: Config, now: number): Promise<RefreshRun> {
  const run = await planRefresh(env, config, now);
  console.log(JSON.stringify({ msg: "scheduled refresh", ...run }));
  return run;
}

async function planRefresh(env: Env, config: Config, now: number): Promise<RefreshRun> {
  const none = (reason: string, bound = 0): RefreshRun => ({ jobId: null, selected: 0, bound, reason });
  if (!config.REFRESH_ENABLED) return none("disabled (REFRESH_ENABLED=false)");
  const open = await openRefreshJob(env.DB);
  if (open) return none(`refresh job ${open} still open`);
  const quotas = await quotaReport(env.RATE_LIMITER, config).catch((error) => {
    console.warn(JSON.stringify({ msg: "refresh: quotas unreadable", error: String(error) }));
    return null;
  });
  const bound = refreshBound(config, quotas);
  if (bound.items <= 0) return none(bound.reason ?? "no quota left");
  const items = await listExpiringItems(env.DB, {
    until: now + config.REFRESH_HORIZON_HOURS * HOUR_MS,
    requestedSince: now - config.REFRESH_RECENT_DAYS * 24 * HOUR_MS,
    limit: bound.items,
  });
  if (items.length === 0) return none("nothing expires within the horizon", bound.items);
  const job = await createRefreshJob(env, items, now);
  return { jobId: job.jobId, selected: items.length, bound: bound.items, reason: bound.reason };
}
