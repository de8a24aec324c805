import type { z } from "zod";
import type { Config } from "../config";
import { openTaskCounts } from "../db/analytics";
import { cacheStatsSince } from "../db/cache-stats";
import { deadLetterCountStatement } from "../db/jobs";
import { analyticsEngineEvents } from "./analytics-engine";
import type { EventsBackend, HourlyWarm } from "./backend";
import { d1Events } from "./d1";
import { fillHours, windowStart } from "./hours";
import type {
  backlog,
  cacheSeries,
  dlqDepth,
  failuresSeries,
  quotaUsedSeries,
  throughputSeries,
  upstreamSeries,
} from "./schemas";

/** Analytics Engine when its account id and read token are configured, D1 otherwise. */
export function eventsBackend(env: Env, config: Config, fetcher?: typeof fetch): EventsBackend {
  if (config.ANALYTICS_ACCOUNT_ID && config.ANALYTICS_READ_TOKEN) {
    return analyticsEngineEvents({
      accountId: config.ANALYTICS_ACCOUNT_ID,
      token: config.ANALYTICS_READ_TOKEN,
      dataset: config.ANALYTICS_DATASET,
      ...(config.ANALYTICS_API_BASE ? { apiBase: config.ANALYTICS_API_BASE } : {}),
      ...(fetcher ? { fetch: fetcher } : {}),
    });
  }
  return d1Events(env.DB);
}

const ratio = (hits: number, misses: number) =>
  hits + misses === 0 ? null : Math.round((hits / (hits + misses)) * 1000) / 1000;
const DAY_MS = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString();

/** The named queries: each one answer of the analytics API, the same shape whatever the backend. */
export class AnalyticsQueries {
  private readonly events: EventsBackend;
  private readonly db: D1Database;
  private readonly config: Config;
  private readonly queue: Queue | undefined;
  /** The overview asks for throughput and failures of the same window: one events query serves both. */
  private readonly warmRows = new Map<string, Promise<HourlyWarm[]>>();

  constructor(events: EventsBackend, db: D1Database, config: Config, queue?: Queue) {
    this.events = events;
    this.db = db;
    this.config = config;
    this.queue = queue;
  }

  /** Seed 001: authors processed and works cached per hour. */
  async throughput(hours: number, now: number): Promise<z.infer<typeof throughputSeries>> {
    const start = windowStart(now, hours);
    const rows = await this.warmByHour(start, hours);
    return {
      backend: this.events.name,
      hours,
      rows: fillHours(rows, start, hours, (hour, r) => ({
        hour: iso(hour),
        authorsProcessed: r?.authorsProcessed ?? 0,
        worksCached: r?.worksCached ?? 0,
        invocations: r?.invocations ?? 0,
      })),
    };
  }

  async failures(hours: number, now: number): Promise<z.infer<typeof failuresSeries>> {
    const start = windowStart(now, hours);
    const rows = await this.warmByHour(start, hours);
    return {
      backend: this.events.name,
      hours,
      rows: fillHours(rows, start, hours, (hour, r) => ({
        hour: iso(hour),
        failed: r?.failed ?? 0,
        retried: r?.retried ?? 0,
        subrequests: r?.subrequests ?? 0,
      })),
    };
  }

  private warmByHour(start: number, hours: number): Promise<HourlyWarm[]> {
    const key = `${start}:${hours}`;
    let rows = this.warmRows.get(key);
    if (!rows) {
      rows = this.events.warmByHour(start, hours);
      this.warmRows.set(key, rows);
    }
    return rows;
  }

  /** The read API's cache hit rate per hour (cache_stats in D1 under both backends). */
  async cache(hours: number, now: number): Promise<z.infer<typeof cacheSeries>> {
    const start = windowStart(now, hours);
    const rows = (await cacheStatsSince(this.db, start)).map((r) => ({
      hour: Number(r.hour),
      hits: Number(r.hits),
      misses: Number(r.misses),
    }));
    const filled = fillHours(rows, start, hours, (hour, r) => {
      const hits = r?.hits ?? 0;
      const misses = r?.misses ?? 0;
      return { hour: iso(hour), hits, misses, rate: ratio(hits, misses) };
    });
    const hits = filled.reduce((n, r) => n + r.hits, 0);
    const misses = filled.reduce((n, r) => n + r.misses, 0);
    return {
      backend: this.events.name,
      hours,
      totals: { hits, misses, rate: ratio(hits, misses) },
      rows: filled,
    };
  }

  /** Upstream tries, errors and 429s per provider per minute, for the last `minutes` minutes. */
  async upstream(minutes: number, now: number): Promise<z.infer<typeof upstreamSeries>> {
    const start = Math.floor(now / 60_000) * 60_000 - (minutes - 1) * 60_000;
    const rows = await this.events.upstreamByMinute(start, minutes);
    return {
      backend: this.events.name,
      minutes,
      rows: rows
        .filter((r) => r.minute >= start)
        .sort((a, b) => a.minute - b.minute || a.provider.localeCompare(b.provider))
        .map((r) => ({ ...r, minute: iso(r.minute) })),
    };
  }

  /**
   * Quota used per provider per UTC day, beside the configured daily limit. History only: the provider's own
   * quota day (Google's is Pacific time) and its live count are /health's `quotas`.
   */
  async quotaUsed(days: number, now: number): Promise<z.infer<typeof quotaUsedSeries>> {
    const start = Math.floor(now / DAY_MS) * DAY_MS - (days - 1) * DAY_MS;
    const rows = await this.events.requestsByDay(start, days);
    const limits = {
      openlibrary: this.config.OPENLIBRARY_DAILY_QUOTA,
      googlebooks: this.config.GOOGLE_BOOKS_DAILY_QUOTA,
    };
    return {
      backend: this.events.name,
      days,
      rows: rows
        .filter((r) => r.day >= start)
        .sort((a, b) => a.day - b.day || a.provider.localeCompare(b.provider))
        .map((r) => ({ ...r, day: iso(r.day), limit: limits[r.provider] > 0 ? limits[r.provider] : null })),
    };
  }

  async dlq(): Promise<z.infer<typeof dlqDepth>> {
    const row = await deadLetterCountStatement(this.db).first<{ n: number }>();
    const count = Number(row?.n ?? 0);
    const threshold = this.config.DLQ_ALERT_THRESHOLD;
    return { count, threshold, alert: count > threshold };
  }

  /** Queue.metrics() where the runtime has it (local workerd may not), beside D1's open tasks. */
  async backlog(): Promise<z.infer<typeof backlog>> {
    const [queue, tasks] = await Promise.all([this.queueMetrics(), openTaskCounts(this.db)]);
    return { queue, tasks };
  }

  private async queueMetrics(): Promise<z.infer<typeof backlog>["queue"]> {
    if (typeof this.queue?.metrics !== "function") return null;
    try {
      const m = await this.queue.metrics();
      return {
        backlogCount: m.backlogCount,
        backlogBytes: m.backlogBytes,
        oldestMessageAt: m.oldestMessageTimestamp ? new Date(m.oldestMessageTimestamp).toISOString() : null,
      };
    } catch {
      return null;
    }
  }
}
