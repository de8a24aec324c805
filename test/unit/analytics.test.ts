import { describe, expect, it } from "vitest";
import { analyticsEngineEvents, runAeSql } from "../../src/analytics/analytics-engine";
import { fillHours, HOUR_MS, windowStart } from "../../src/analytics/hours";
import { AppError } from "../../src/errors";

const T = Date.UTC(2026, 11, 2, 10, 30); // 10:30 UTC

describe("hourly windows", () => {
  it("a window of N hours ends with the current hour", () => {
    expect(windowStart(T, 1)).toBe(Date.UTC(2026, 11, 2, 10));
    expect(windowStart(T, 24)).toBe(Date.UTC(2026, 11, 1, 11));
  });

  it("fills every hour, oldest first, and drops rows outside the window", () => {
    const start = windowStart(T, 3);
    const rows = [
      { hour: start - HOUR_MS, n: 9 },
      { hour: start + HOUR_MS, n: 2 },
    ];
    expect(fillHours(rows, start, 3, (hour, r) => ({ hour, n: r?.n ?? 0 }))).toEqual([
      { hour: start, n: 0 },
      { hour: start + HOUR_MS, n: 2 },
      { hour: start + 2 * HOUR_MS, n: 0 },
    ]);
  });
});

describe("Analytics Engine SQL API client", () => {
  const options = (fetch: typeof globalThis.fetch) => ({
    accountId: "a",
    token: "t",
    dataset: "d",
    apiBase: "http://ae.test",
    fetch,
  });
  const answer = (body: string, status = 200) => (async () => new Response(body, { status })) as typeof fetch;

  it("decodes AE's DateTime strings and epoch seconds alike, numbers as strings or numbers", async () => {
    const row = {
      invocations: "1",
      authors_processed: 2,
      works_cached: "3",
      failed: 0,
      retried: 0,
      subrequests: 1,
    };
    const body = JSON.stringify({
      data: [
        { hour: "2026-12-02 10:00:00", ...row },
        { hour: T / 1000 - 1800 - 3600, ...row },
      ],
    });
    const rows = await analyticsEngineEvents(options(answer(body))).warmByHour(0, 24);
    expect(rows.map((r) => r.hour)).toEqual([Date.UTC(2026, 11, 2, 10), Date.UTC(2026, 11, 2, 9)]);
    expect(rows[0]).toMatchObject({ invocations: 1, authorsProcessed: 2, worksCached: 3 });
  });

  it("turns an unreachable API, a refusal and a non-JSON answer into 502 analytics_unavailable", async () => {
    const cases = [
      (async () => {
        throw new TypeError("connection refused");
      }) as typeof fetch,
      answer('{"errors":[{"message":"Authentication error"}]}', 401),
      answer("<html>gateway</html>"),
      answer('{"no":"data"}'),
    ];
    for (const fetch of cases) {
      const error = await runAeSql(options(fetch), "SELECT 1").catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AppError);
      expect(error).toMatchObject({ code: "analytics_unavailable", httpStatus: 502 });
    }
  });
});
