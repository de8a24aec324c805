import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { requestsByDaySql, upstreamByMinuteSql, warmByHourSql } from "../../src/analytics/ae-sql";
import { HOUR_MS, windowStart } from "../../src/analytics/hours";
import { createApp } from "../../src/api/app";
import { loadConfig } from "../../src/config";
import { insertWarmEventStatement, type WarmEvent } from "../../src/db/events";
import {
  REQUESTS_BY_DAY_SQL,
  UPSTREAM_BY_MINUTE_SQL,
  upsertUpstreamMinuteStatements,
} from "../../src/db/usage";
import { resetAll } from "../support/db";
import { callAsAdmin, TOKEN } from "../support/http";

const event = (over: Partial<WarmEvent>): WarmEvent => ({
  queue: "author-warming-queue",
  messages: 10,
  done: 0,
  skipped: 0,
  failed: 0,
  retried: 0,
  works: 0,
  subrequests: 0,
  durationMs: 50,
  ...over,
});

/** Three invocations in two hours of the last 24, one 30 h ago (outside the window). */
function scenario(now: number) {
  const thisHour = windowStart(now, 1);
  return [
    {
      at: thisHour - 3 * HOUR_MS + 60_000,
      e: event({ done: 8, skipped: 1, failed: 1, works: 120, retried: 2, subrequests: 20 }),
    },
    { at: thisHour - 3 * HOUR_MS + 120_000, e: event({ done: 5, works: 75, subrequests: 10 }) },
    { at: thisHour + 1_000, e: event({ queue: "author-warming-dlq", failed: 3, retried: 1, messages: 4 }) },
    { at: thisHour - 30 * HOUR_MS, e: event({ done: 99, works: 999 }) },
  ];
}

/** What both backends must answer for `scenario` over 24 h. */
function expectedThroughput(now: number) {
  const start = windowStart(now, 24);
  return Array.from({ length: 24 }, (_, i) => {
    const hour = new Date(start + i * HOUR_MS).toISOString();
    if (i === 20) return { hour, authorsProcessed: 15, worksCached: 195, invocations: 2 };
    if (i === 23) return { hour, authorsProcessed: 3, worksCached: 0, invocations: 1 };
    return { hour, authorsProcessed: 0, worksCached: 0, invocations: 0 };
  });
}

const PINNED_SQL = `SELECT
  toStartOfHour(timestamp) AS hour,
  SUM(_sample_interval) AS invocations,
  SUM(_sample_interval * (double2 + double3 + double4)) AS authors_processed,
  SUM(_sample_interval * (double6)) AS works_cached,
  SUM(_sample_interval * (double4)) AS failed,
  SUM(_sample_interval * (double5)) AS retried,
  SUM(_sample_interval * (double7)) AS subrequests
FROM kindling_warming
WHERE timestamp > NOW() - INTERVAL '24' HOUR
GROUP BY hour
ORDER BY hour
FORMAT JSON`;

const PINNED_UPSTREAM_SQL = `SELECT
  toStartOfInterval(timestamp, INTERVAL '1' MINUTE) AS minute,
  SUM(_sample_interval * (double9)) AS openlibrary_requests,
  SUM(_sample_interval * (double10)) AS openlibrary_errors,
  SUM(_sample_interval * (double11)) AS openlibrary_throttled,
  SUM(_sample_interval * (double12)) AS googlebooks_requests,
  SUM(_sample_interval * (double13)) AS googlebooks_errors,
  SUM(_sample_interval * (double14)) AS googlebooks_throttled
FROM kindling_warming
WHERE timestamp > NOW() - INTERVAL '60' MINUTE
GROUP BY minute
ORDER BY minute
FORMAT JSON`;

const PINNED_DAY_SQL = `SELECT
  toStartOfDay(timestamp) AS day,
  SUM(_sample_interval * (double9)) AS openlibrary_requests,
  SUM(_sample_interval * (double12)) AS googlebooks_requests
FROM kindling_warming
WHERE timestamp > NOW() - INTERVAL '7' DAY
GROUP BY day
ORDER BY day
FORMAT JSON`;

const DAY_MS = 86_400_000;
/** upstreamScenario's requests per provider per UTC day (its three minutes may straddle midnight). */
function expectedDays(now: number) {
  const { recent, latest, old } = upstreamScenario(now);
  const totals = new Map<string, number>();
  const add = (at: number, provider: string, n: number) => {
    const key = `${Math.floor(at / DAY_MS) * DAY_MS}|${provider}`;
    totals.set(key, (totals.get(key) ?? 0) + n);
  };
  add(recent, "openlibrary", 12);
  add(recent, "googlebooks", 3);
  add(latest, "openlibrary", 5);
  add(old, "openlibrary", 99);
  const config = loadConfig(env);
  const limit = (p: string) => {
    const q = p === "openlibrary" ? config.OPENLIBRARY_DAILY_QUOTA : config.GOOGLE_BOOKS_DAILY_QUOTA;
    return q > 0 ? q : null;
  };
  return [...totals]
    .map(([key, requests]) => {
      const [day, provider] = key.split("|") as [string, string];
      return { day: Number(day), provider, requests };
    })
    .sort((a, b) => a.day - b.day || a.provider.localeCompare(b.provider))
    .map((r) => ({ ...r, day: new Date(r.day).toISOString(), limit: limit(r.provider) }));
}

const MINUTE_MS = 60_000;
/** Two minutes of upstream tries in the last hour (one provider idle in the second), one 2 h ago. */
function upstreamScenario(now: number) {
  const m = Math.floor(now / MINUTE_MS) * MINUTE_MS;
  return {
    recent: m - 10 * MINUTE_MS,
    latest: m - 2 * MINUTE_MS,
    old: m - 120 * MINUTE_MS,
  };
}

function expectedUpstream(now: number) {
  const { recent, latest } = upstreamScenario(now);
  return [
    { minute: new Date(recent).toISOString(), provider: "googlebooks", requests: 3, errors: 0, throttled: 0 },
    {
      minute: new Date(recent).toISOString(),
      provider: "openlibrary",
      requests: 12,
      errors: 2,
      throttled: 1,
    },
    { minute: new Date(latest).toISOString(), provider: "openlibrary", requests: 5, errors: 0, throttled: 0 },
  ];
}

async function seedUpstream(now: number) {
  const { recent, latest, old } = upstreamScenario(now);
  await env.DB.batch([
    // Two invocations in one minute add up (the consumer upserts).
    ...upsertUpstreamMinuteStatements(env.DB, recent, [
      { provider: "openlibrary", requests: 7, errors: 2, throttled: 1 },
      { provider: "googlebooks", requests: 3, errors: 0, throttled: 0 },
    ]),
    ...upsertUpstreamMinuteStatements(env.DB, recent, [
      { provider: "openlibrary", requests: 5, errors: 0, throttled: 0 },
    ]),
    ...upsertUpstreamMinuteStatements(env.DB, latest, [
      { provider: "openlibrary", requests: 5, errors: 0, throttled: 0 },
    ]),
    ...upsertUpstreamMinuteStatements(env.DB, old, [
      { provider: "openlibrary", requests: 99, errors: 9, throttled: 9 },
    ]),
  ]);
}

/** What AE answers for the upstream query over `upstreamScenario`: a column per provider × count. */
function aeUpstreamAnswer(now: number) {
  const { recent, latest } = upstreamScenario(now);
  return {
    meta: [{ name: "minute", type: "DateTime" }],
    data: [
      {
        minute: aeTime(recent),
        openlibrary_requests: "12",
        openlibrary_errors: 2,
        openlibrary_throttled: 1,
        googlebooks_requests: 3,
        googlebooks_errors: 0,
        googlebooks_throttled: 0,
      },
      {
        minute: aeTime(latest),
        openlibrary_requests: 5,
        openlibrary_errors: 0,
        openlibrary_throttled: 0,
        googlebooks_requests: 0,
        googlebooks_errors: 0,
        googlebooks_throttled: 0,
      },
    ],
    rows: 2,
  };
}

/** AE's DateTime as the SQL API prints it: "YYYY-MM-DD hh:mm:ss", UTC. */
const aeTime = (ms: number) => new Date(ms).toISOString().slice(0, 19).replace("T", " ");

/**
 * A stand-in for the Analytics Engine SQL API: checks the request as Cloudflare would (account path,
 * bearer token, SQL in the body) and answers its JSON format with what AE would compute for `scenario`
 * (the two invocations of one hour kept as one sampled row, _sample_interval 2). It evaluates only the
 * pinned, weighted SQL; any other text is a 422. Integers come as strings, like AE's UInt64.
 */
function aeStandIn(now: number, seen: string[]) {
  return (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    if (url.pathname !== "/client/v4/accounts/acc-123/analytics_engine/sql" || request.method !== "POST")
      return new Response("not found", { status: 404 });
    if (request.headers.get("Authorization") !== "Bearer ae-read-token")
      return Response.json({ errors: [{ message: "Authentication error" }] }, { status: 401 });
    const sql = await request.text();
    seen.push(sql);
    const thisHour = windowStart(now, 1);
    if (sql === PINNED_UPSTREAM_SQL) return Response.json(aeUpstreamAnswer(now));
    if (sql === PINNED_DAY_SQL) {
      // AE's per-day sums, computed from the same scenario (one column per provider).
      const byDay = new Map<string, Record<string, unknown>>();
      for (const r of expectedDays(now)) {
        const row = byDay.get(r.day) ?? {
          day: aeTime(Date.parse(r.day)),
          openlibrary_requests: 0,
          googlebooks_requests: 0,
        };
        row[`${r.provider}_requests`] = String(r.requests);
        byDay.set(r.day, row);
      }
      return Response.json({ meta: [], data: [...byDay.values()], rows: byDay.size });
    }
    // The stand-in "evaluates" the queries it knows; anything else is a 422 like an unknown column.
    if (sql !== PINNED_SQL) return new Response("unknown query", { status: 422 });
    const sampled = { done: 6.5, skipped: 0.5, failed: 0.5, works: 97.5, retried: 1, subrequests: 15 };
    const w = 2;
    return Response.json({
      meta: [
        { name: "hour", type: "DateTime" },
        { name: "invocations", type: "UInt64" },
        { name: "authors_processed", type: "Float64" },
      ],
      data: [
        {
          hour: aeTime(thisHour - 3 * HOUR_MS),
          invocations: String(w),
          authors_processed: w * (sampled.done + sampled.skipped + sampled.failed),
          works_cached: w * sampled.works,
          failed: w * sampled.failed,
          retried: w * sampled.retried,
          subrequests: w * sampled.subrequests,
        },
        {
          hour: aeTime(thisHour),
          invocations: "1",
          authors_processed: 3,
          works_cached: 0,
          failed: 3,
          retried: 1,
          subrequests: 0,
        },
      ],
      rows: 2,
      rows_before_limit_at_least: 2,
    });
  }) as typeof fetch;
}

const aeEnv = {
  ...env,
  ANALYTICS_ACCOUNT_ID: "acc-123",
  ANALYTICS_READ_TOKEN: "ae-read-token",
  ANALYTICS_API_BASE: "http://ae.test/client/v4",
};
const get = (app: ReturnType<typeof createApp>, path: string, e: object) =>
  app.fetch(new Request(`http://kindling.test${path}`, { headers: { Authorization: `Bearer ${TOKEN}` } }), e);

/** Tests compare their own clock's window with the route's: keep both inside the same hour. */
async function awayFromHourBoundary(): Promise<number> {
  const intoHour = Date.now() % HOUR_MS;
  if (intoHour > HOUR_MS - 5_000) await new Promise((r) => setTimeout(r, HOUR_MS - intoHour + 100));
  return Date.now();
}

async function seed(now: number) {
  await env.DB.batch(scenario(now).map(({ at, e }) => insertWarmEventStatement(env.DB, e, at)));
  await seedUpstream(now);
}

describe("analytics: seed 001's hourly query on both backends", () => {
  beforeEach(resetAll);

  it("pins the Analytics Engine SQL (weighted by _sample_interval)", () => {
    expect(warmByHourSql("kindling_warming", 24)).toBe(PINNED_SQL);
    expect(() => warmByHourSql("x; DROP TABLE y", 24)).toThrow(/dataset/);
    expect(() => warmByHourSql("kindling_warming", 1.5)).toThrow(/hours/);
  });

  it("D1: authors processed and works cached per hour over the last 24 h", async () => {
    const now = await awayFromHourBoundary();
    await seed(now);
    const response = await callAsAdmin("/api/analytics/throughput?hours=24");
    expect(response.status).toBe(200);
    const body = (await response.json()) as { backend: string; rows: unknown[] };
    expect(body.backend).toBe("d1");
    expect(body.rows).toEqual(expectedThroughput(now));
  });

  it("Analytics Engine: the same query through the SQL API answers the same shape and numbers", async () => {
    const now = await awayFromHourBoundary();
    const seen: string[] = [];
    const app = createApp({ analyticsFetch: aeStandIn(now, seen) });
    const response = await get(app, "/api/analytics/throughput?hours=24", aeEnv);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { backend: string; rows: unknown[] };
    expect(body.backend).toBe("analytics-engine");
    expect(body.rows).toEqual(expectedThroughput(now));
    expect(seen).toEqual([PINNED_SQL]);
  });

  it("failures per hour match between D1 and AE; the overview has the same keys from both", async () => {
    const now = await awayFromHourBoundary();
    await seed(now);
    const d1 = (await (await callAsAdmin("/api/analytics/overview")).json()) as Record<string, unknown>;
    const seen: string[] = [];
    const app = createApp({ analyticsFetch: aeStandIn(now, seen) });
    const ae = (await (await get(app, "/api/analytics/overview", aeEnv)).json()) as Record<string, unknown>;
    // Throughput and failures come from one SQL API request; upstream tries per minute from another.
    expect(seen.sort()).toEqual([PINNED_SQL, PINNED_UPSTREAM_SQL].sort());
    const upstream = (o: Record<string, unknown>) => (o.upstream as { rows: unknown[] }).rows;
    expect(upstream(ae)).toEqual(upstream(d1));
    const failures = (o: Record<string, unknown>) => (o.failures as { rows: unknown[] }).rows;
    expect(failures(ae)).toEqual(failures(d1));
    const thisHour = failures(d1)[23] as { failed: number; retried: number };
    expect(thisHour).toMatchObject({ failed: 3, retried: 1 });
    expect((failures(d1)[20] as { subrequests: number }).subrequests).toBe(30);
    expect(Object.keys(ae).sort()).toEqual(Object.keys(d1).sort());
    expect({ ...ae, backend: "d1", throughput: null, failures: null, cache: null, upstream: null }).toEqual({
      ...d1,
      throughput: null,
      failures: null,
      cache: null,
      upstream: null,
    });
  });

  it("answers 502 analytics_unavailable when the SQL API refuses (wrong token), never made-up zeros", async () => {
    const app = createApp({ analyticsFetch: aeStandIn(Date.now(), []) });
    const response = await get(app, "/api/analytics/throughput", { ...aeEnv, ANALYTICS_READ_TOKEN: "wrong" });
    expect(response.status).toBe(502);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe("analytics_unavailable");
  });
});

describe("analytics: upstream requests, errors and 429s per provider per minute", () => {
  beforeEach(resetAll);

  it("pins both backends' SQL", () => {
    expect(upstreamByMinuteSql("kindling_warming", 60)).toBe(PINNED_UPSTREAM_SQL);
    expect(() => upstreamByMinuteSql("kindling_warming", 0)).toThrow(/minutes/);
    expect(UPSTREAM_BY_MINUTE_SQL).toBe(`SELECT minute, provider, requests, errors, throttled
FROM upstream_minutes WHERE minute >= ?1 ORDER BY minute, provider`);
  });

  it("D1 and the AE stand-in answer the same rows for the last hour", async () => {
    const now = Date.now();
    await seedUpstream(now);
    const d1 = await callAsAdmin("/api/analytics/upstream?minutes=60");
    expect(d1.status).toBe(200);
    const d1Body = (await d1.json()) as { backend: string; minutes: number; rows: unknown[] };
    expect(d1Body).toEqual({ backend: "d1", minutes: 60, rows: expectedUpstream(now) });
    const seen: string[] = [];
    const app = createApp({ analyticsFetch: aeStandIn(now, seen) });
    const ae = await get(app, "/api/analytics/upstream?minutes=60", aeEnv);
    expect(ae.status).toBe(200);
    expect(await ae.json()).toEqual({
      backend: "analytics-engine",
      minutes: 60,
      rows: expectedUpstream(now),
    });
    expect(seen).toEqual([PINNED_UPSTREAM_SQL]);
  });
});

describe("analytics: quota used per provider per day", () => {
  beforeEach(resetAll);

  it("pins both backends' SQL", () => {
    expect(requestsByDaySql("kindling_warming", 7)).toBe(PINNED_DAY_SQL);
    expect(() => requestsByDaySql("kindling_warming", 0)).toThrow(/days/);
    expect(
      REQUESTS_BY_DAY_SQL,
    ).toBe(`SELECT (minute / 86400000) * 86400000 AS day, provider, SUM(requests) AS requests
FROM upstream_minutes WHERE minute >= ?1 GROUP BY 1, 2 ORDER BY 1, 2`);
  });

  it("D1 and the AE stand-in answer the same days, with each provider's configured limit", async () => {
    const now = Date.now();
    await seedUpstream(now);
    const d1 = await callAsAdmin("/api/analytics/quota-used?days=7");
    expect(d1.status).toBe(200);
    expect(await d1.json()).toEqual({ backend: "d1", days: 7, rows: expectedDays(now) });
    const seen: string[] = [];
    const app = createApp({ analyticsFetch: aeStandIn(now, seen) });
    const ae = await get(app, "/api/analytics/quota-used?days=7", aeEnv);
    expect(ae.status).toBe(200);
    expect(await ae.json()).toEqual({ backend: "analytics-engine", days: 7, rows: expectedDays(now) });
    expect(seen).toEqual([PINNED_DAY_SQL]);
  });
});

describe("analytics: state", () => {
  beforeEach(resetAll);

  it("DLQ depth alerts past DLQ_ALERT_THRESHOLD; backlog counts open tasks of unfinished jobs", async () => {
    const now = await awayFromHourBoundary();
    const job = (id: string, status: string, dead: number) =>
      env.DB.prepare(
        `INSERT INTO jobs (id, status, max_depth, format, request_hash, dead_count, created_at, updated_at)
         VALUES (?1, ?2, 1, 'csv', 'h', ?3, ?4, ?4)`,
      ).bind(id, status, dead, now);
    const task = (jobId: string, key: string, status: string) =>
      env.DB.prepare(
        `INSERT INTO tasks (job_id, author_key, author_name, depth, status, created_at, updated_at)
         VALUES (?1, ?2, ?2, 0, ?3, ?4, ?4)`,
      ).bind(jobId, key, status, now);
    await env.DB.batch([
      job("a", "running", 6),
      job("b", "completed_with_errors", 5),
      task("a", "x", "pending"),
      task("a", "y", "queued"),
      task("a", "z", "queued"),
      task("a", "w", "running"),
      task("a", "v", "done"),
      // A finished job's leftovers are not backlog.
      task("b", "x", "queued"),
    ]);
    const dlq = (await (await callAsAdmin("/api/analytics/dlq")).json()) as Record<string, unknown>;
    expect(dlq).toEqual({ count: 11, threshold: 10, alert: true });
    const backlog = (await (await callAsAdmin("/api/analytics/backlog")).json()) as { tasks: unknown };
    expect(backlog.tasks).toEqual({ pending: 1, queued: 2, running: 1 });
  });

  it("every analytics route refuses a request without a token", async () => {
    for (const path of ["overview", "throughput", "failures", "cache", "dlq", "backlog"]) {
      const response = await createApp().fetch(
        new Request(`http://kindling.test/api/analytics/${path}`),
        env,
      );
      expect(response.status, path).toBe(401);
    }
  });
});

describe("/openapi.json in the worker", () => {
  it("answers the generated document without a token", async () => {
    const response = await createApp().fetch(new Request("http://kindling.test/openapi.json"), env);
    expect(response.status).toBe(200);
    const document = (await response.json()) as { openapi: string; paths: Record<string, unknown> };
    expect(document.openapi).toBe("3.1.0");
    expect(Object.keys(document.paths)).toContain("/api/analytics/throughput");
  });
});
