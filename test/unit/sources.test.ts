import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config";
import type { AppError, UpstreamError } from "../../src/errors";
import { CircuitBreaker } from "../../src/lib/breaker";
import { Budget } from "../../src/lib/budget";
import { createProviderBreakers, fetchAuthorWorks, type SourcesContext } from "../../src/sources";
import { fetchGoogleBooksWorks } from "../../src/sources/googlebooks";
import { GRANT_LOOKAHEAD_MS } from "../../src/sources/grant-scheduler";
import type { UpstreamDeps } from "../../src/sources/http";
import { coAuthorsOf, mergeWorks } from "../../src/sources/merge";
import { fetchOpenLibraryWorks } from "../../src/sources/openlibrary";
import { durableRateLimiter } from "../../src/sources/rate-limit";
import {
  ARRIVAL_JITTER_ALLOWANCE_MS,
  lateSlotToleranceMs,
  SlotScheduler,
  slotSpacingMs,
} from "../../src/sources/slots";
import type { SourceWork } from "../../src/sources/types";
import { createFakeUpstream } from "../support/upstream/handler.ts";

const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });

function recordingFetch(answer: (url: URL) => Response | Promise<Response>) {
  const urls: URL[] = [];
  const headers: Headers[] = [];
  const fetcher = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    urls.push(new URL(request.url));
    headers.push(request.headers);
    return answer(new URL(request.url));
  }) as typeof fetch;
  return { fetcher, urls, headers };
}

const deps = (fetcher: typeof fetch): UpstreamDeps => ({
  fetch: fetcher,
  userAgent: "Kindling/test (ops@example.org)",
  timeoutMs: 1000,
});

/** Synthetic Google Books volumes 0..n-1 with valid ISBN-13s. */
function gbVolume(i: number) {
  const base = `978000000${String(i).padStart(3, "0")}`;
  let sum = 0;
  for (let k = 0; k < 12; k++) sum += Number(base[k]) * (k % 2 === 0 ? 1 : 3);
  const isbn = base + String((10 - (sum % 10)) % 10);
  return {
    id: `vol${i}`,
    volumeInfo: {
      title: `Book ${i}`,
      authors: ["Ann Author"],
      industryIdentifiers: [{ type: "ISBN_13", identifier: isbn }],
    },
  };
}

describe("paging", () => {
  it("Google Books: 80 results over two pages of 40 → 2 requests, 80 works", async () => {
    const { fetcher, urls } = recordingFetch((url) => {
      const start = Number(url.searchParams.get("startIndex"));
      const size = Number(url.searchParams.get("maxResults"));
      const items = Array.from({ length: Math.max(0, Math.min(size, 80 - start)) }, (_, k) =>
        gbVolume(start + k),
      );
      return json({ kind: "books#volumes", totalItems: 80, ...(items.length ? { items } : {}) });
    });
    const result = await fetchGoogleBooksWorks(
      "Ann Author",
      { baseUrl: "http://gb.test", maxWorks: 500 },
      deps(fetcher),
    );
    expect(urls).toHaveLength(2);
    expect(urls.map((u) => u.searchParams.get("startIndex"))).toEqual(["0", "40"]);
    expect(urls[0]?.searchParams.get("q")).toBe('inauthor:"Ann Author"');
    expect(result.works).toHaveLength(80);
    expect(new Set(result.works.map((w) => w.googleBooksId)).size).toBe(80);
  });

  it("Open Library: 80 results over two pages → 2 requests, 80 works, offset against numFound", async () => {
    const { fetcher, urls } = recordingFetch((url) => {
      const offset = Number(url.searchParams.get("offset"));
      const limit = Number(url.searchParams.get("limit"));
      const docs = Array.from({ length: Math.max(0, Math.min(limit, 80 - offset)) }, (_, k) => ({
        key: `/works/OL${offset + k}W`,
        title: `Work ${offset + k}`,
        author_name: ["Ann Author"],
      }));
      return json({ numFound: 80, start: offset, docs });
    });
    const result = await fetchOpenLibraryWorks(
      "Ann Author",
      { baseUrl: "http://ol.test", maxWorks: 500, pageSize: 40 },
      deps(fetcher),
    );
    expect(urls.map((u) => u.searchParams.get("offset"))).toEqual(["0", "40"]);
    expect(result.works).toHaveLength(80);
    expect(result.requests).toBe(2);
  });

  it("stops at the per-author cap and says the list was truncated", async () => {
    const { fetcher, urls } = recordingFetch((url) =>
      json({
        numFound: 1000,
        docs: Array.from({ length: Number(url.searchParams.get("limit")) }, (_, k) => ({
          key: `/works/OL${k}W`,
          title: `T${k}`,
        })),
      }),
    );
    const result = await fetchOpenLibraryWorks(
      "Prolific Person",
      { baseUrl: "http://ol.test", maxWorks: 150 },
      deps(fetcher),
    );
    expect(result.works).toHaveLength(150);
    expect(result.truncated).toBe(true);
    expect(urls.map((u) => u.searchParams.get("limit"))).toEqual(["100", "100"]);
  });

  it("a single-entity response yields that entity", async () => {
    const { fetcher } = recordingFetch(() =>
      json({ key: "/works/OL1W", title: "Only One", author_name: ["Ann Author"], isbn: ["0140328726"] }),
    );
    const ol = await fetchOpenLibraryWorks(
      "Ann Author",
      { baseUrl: "http://ol.test", maxWorks: 100 },
      deps(fetcher),
    );
    expect(ol.works).toHaveLength(1);
    expect(ol.works[0]).toMatchObject({ title: "Only One", isbn13s: ["9780140328721"] });
    const gb = recordingFetch(() => json(gbVolume(7)));
    const volumes = await fetchGoogleBooksWorks(
      "Ann Author",
      { baseUrl: "http://gb.test", maxWorks: 100 },
      deps(gb.fetcher),
    );
    expect(volumes.works.map((w) => w.googleBooksId)).toEqual(["vol7"]);
  });

  it("an empty page ends paging with a warning, not an error", async () => {
    const { fetcher, urls } = recordingFetch(() => json({ numFound: 50, docs: [] }));
    const result = await fetchOpenLibraryWorks(
      "Ann Author",
      { baseUrl: "http://ol.test", maxWorks: 100 },
      deps(fetcher),
    );
    expect(result.works).toEqual([]);
    expect(urls).toHaveLength(1);
    expect(result.warnings[0]).toMatch(/empty page/);
    const none = recordingFetch(() => json({ kind: "books#volumes", totalItems: 0 }));
    const gb = await fetchGoogleBooksWorks(
      "Nobody",
      { baseUrl: "http://gb.test", maxWorks: 100 },
      deps(none.fetcher),
    );
    expect(gb.works).toEqual([]);
    expect(gb.warnings).toEqual([]);
  });

  it("sends an identifying User-Agent", async () => {
    const { fetcher, headers } = recordingFetch(() => json({ numFound: 0, docs: [] }));
    await fetchOpenLibraryWorks("Ann Author", { baseUrl: "http://ol.test", maxWorks: 10 }, deps(fetcher));
    expect(headers[0]?.get("User-Agent")).toBe("Kindling/test (ops@example.org)");
  });
});

describe("upstream failures are classified", () => {
  const attempt = (response: () => Response | Promise<Response>) =>
    fetchOpenLibraryWorks(
      "Ann Author",
      { baseUrl: "http://ol.test", maxWorks: 10 },
      deps(recordingFetch(response).fetcher),
    ).then(
      () => {
        throw new Error("expected a failure");
      },
      (error: unknown) => error as UpstreamError,
    );

  it("malformed JSON and a wrong shape are transient", async () => {
    const bad = await attempt(() => new Response("{ not json", { status: 200 }));
    expect(bad).toMatchObject({ code: "upstream_malformed", kind: "transient" });
    const shape = await attempt(() => json({ docs: "nope" }));
    expect(shape).toMatchObject({ code: "upstream_malformed", kind: "transient" });
  });

  it("5xx and 429 are transient with Retry-After; 400/404 are permanent", async () => {
    expect(await attempt(() => json({}, 503))).toMatchObject({ kind: "transient", upstreamStatus: 503 });
    expect(await attempt(() => json({}, 429, { "Retry-After": "12" }))).toMatchObject({
      kind: "transient",
      code: "upstream_rate_limited",
      retryAfterSeconds: 12,
    });
    expect(await attempt(() => json({}, 404))).toMatchObject({
      kind: "permanent",
      code: "upstream_rejected",
    });
    expect(await attempt(() => json({}, 400))).toMatchObject({ kind: "permanent" });
  });

  it("a blip is retried inline; a short Retry-After is waited out; a long one goes back to the queue", async () => {
    let calls = 0;
    const flaky = recordingFetch(() =>
      ++calls === 1 ? json({}, 502) : json({ numFound: 1, docs: [{ key: "/works/OL1W", title: "T" }] }),
    );
    const result = await fetchOpenLibraryWorks(
      "A",
      { baseUrl: "http://ol.test", maxWorks: 10 },
      { ...deps(flaky.fetcher), sleep: async () => {} },
    );
    expect(result.works).toHaveLength(1);
    expect(flaky.urls).toHaveLength(2);
    const limited = recordingFetch(() => json({}, 429, { "Retry-After": "3" }));
    const error = await fetchOpenLibraryWorks(
      "A",
      { baseUrl: "http://ol.test", maxWorks: 10 },
      { ...deps(limited.fetcher), sleep: async () => {} },
    ).catch((e) => e);
    expect(error).toMatchObject({ code: "upstream_rate_limited", retryAfterSeconds: 3 });
    expect(limited.urls).toHaveLength(1);
    const waits: number[] = [];
    let tries = 0;
    const brief = recordingFetch(() =>
      ++tries === 1
        ? json({}, 429, { "Retry-After": "1" })
        : json({ numFound: 1, docs: [{ key: "/works/OL1W", title: "T" }] }),
    );
    const ok = await fetchOpenLibraryWorks(
      "A",
      { baseUrl: "http://ol.test", maxWorks: 10 },
      {
        ...deps(brief.fetcher),
        sleep: async (ms) => {
          waits.push(ms);
        },
      },
    );
    expect(ok.works).toHaveLength(1);
    expect(waits).toEqual([1000]);
    const down = recordingFetch(() => json({}, 500));
    await fetchOpenLibraryWorks(
      "A",
      { baseUrl: "http://ol.test", maxWorks: 10 },
      { ...deps(down.fetcher), sleep: async () => {} },
    ).catch(() => {});
    expect(down.urls).toHaveLength(3);
  });

  it("a timeout is transient", async () => {
    const slow: UpstreamDeps = {
      ...deps((_input, init) => {
        const signal = init?.signal;
        return new Promise((_, reject) => signal?.addEventListener("abort", () => reject(signal.reason)));
      }),
      timeoutMs: 20,
    };
    const error = await fetchOpenLibraryWorks("A", { baseUrl: "http://ol.test", maxWorks: 1 }, slow).catch(
      (e) => e,
    );
    expect(error).toMatchObject({ code: "upstream_timeout", kind: "transient" });
  });
});

const sourceWork = (overrides: Partial<SourceWork>): SourceWork => ({
  source: "openlibrary",
  title: "The Silk Roads",
  authors: ["Peter Frankopan"],
  isbn13s: [],
  openLibraryKey: null,
  googleBooksId: null,
  firstPublishYear: null,
  coverId: null,
  ...overrides,
});

describe("co-authors", () => {
  it("follows co-authors named upstream, but never a name past the 300-character limit", () => {
    const merged = mergeWorks([
      sourceWork({ authors: ["Ada Writer", "Q".repeat(1100), "Bea Writer", "Я".repeat(301)] }),
    ]);
    expect(coAuthorsOf("Ada Writer", merged)).toEqual([{ key: "bea writer", name: "Bea Writer" }]);
  });
});

describe("merge", () => {
  it("merges the same book from both sources into one record that names both", () => {
    const ol = sourceWork({
      isbn13s: ["9781408839973", "9781101912379"],
      openLibraryKey: "/works/OL1W",
      firstPublishYear: 2015,
      coverId: 42,
    });
    const gb = sourceWork({
      source: "googlebooks",
      title: "The Silk Roads: A New History",
      isbn13s: ["9781101912379"],
      googleBooksId: "gb1",
      firstPublishYear: 2016,
    });
    const merged = mergeWorks([gb, ol]);
    expect(merged).toHaveLength(1);
    expect(merged[0]).toMatchObject({
      id: "isbn:9781408839973",
      title: "The Silk Roads",
      openLibraryKey: "/works/OL1W",
      googleBooksId: "gb1",
      firstPublishYear: 2015,
      coverId: 42,
      sources: ["googlebooks", "openlibrary"],
    });
    expect(merged[0]?.isbn13s.sort()).toEqual(["9781101912379", "9781408839973"]);
    expect(mergeWorks([ol, gb])).toEqual(merged);
  });

  it("falls back to the Open Library key, then to normalised title + first author", () => {
    const a = sourceWork({ openLibraryKey: "/works/OL9W" });
    const b = sourceWork({ openLibraryKey: "/works/OL9W", title: "The Silk Roads (Reissue)" });
    expect(mergeWorks([a, b]).map((w) => w.id)).toEqual(["ol:/works/OL9W"]);
    const c = sourceWork({ source: "googlebooks", title: "the silk-roads", authors: ["PETER  FRANKOPAN"] });
    const d = sourceWork({ title: "The Silk Roads!" });
    const byTitle = mergeWorks([c, d]);
    expect(byTitle).toHaveLength(1);
    expect(byTitle[0]?.id).toBe("title:the silk roads|peter frankopan");
    expect(mergeWorks([sourceWork({ title: "Another Book" }), d])).toHaveLength(2);
  });

  it("dedupes one source's repeats across pages", () => {
    const page1 = sourceWork({ isbn13s: ["9781408839973"], openLibraryKey: "/works/OL1W" });
    const page2 = sourceWork({ isbn13s: ["9781408839973"], openLibraryKey: "/works/OL1W" });
    expect(mergeWorks([page1, page2])).toHaveLength(1);
  });
});

describe("circuit breaker", () => {
  it("opens after 5 consecutive failures and lets one probe through after 15 s", () => {
    let now = 0;
    const breaker = new CircuitBreaker("test", { now: () => now });
    for (let i = 0; i < 4; i++) {
      expect(breaker.tryAcquire()).toBe(true);
      breaker.recordFailure();
    }
    expect(breaker.snapshot().state).toBe("closed");
    expect(breaker.tryAcquire()).toBe(true);
    breaker.recordFailure();
    expect(breaker.snapshot()).toMatchObject({ state: "open", consecutiveFailures: 5, openUntil: 15_000 });
    expect(breaker.tryAcquire()).toBe(false);
    now = 14_999;
    expect(breaker.tryAcquire()).toBe(false);
    now = 15_000;
    expect(breaker.tryAcquire()).toBe(true);
    expect(breaker.tryAcquire()).toBe(false); // only one probe at a time
    breaker.recordFailure();
    expect(breaker.snapshot().state).toBe("open");
    now = 30_000;
    expect(breaker.tryAcquire()).toBe(true);
    breaker.recordSuccess();
    expect(breaker.snapshot()).toMatchObject({ state: "closed", consecutiveFailures: 0 });
  });

  it("a success between failures resets the count", () => {
    const breaker = new CircuitBreaker("test", { now: () => 0 });
    breaker.recordFailure();
    breaker.recordFailure();
    breaker.recordSuccess();
    breaker.recordFailure();
    breaker.recordFailure();
    expect(breaker.snapshot().state).toBe("closed");
  });

  it("while open, messages are not sent upstream and the failure is transient with the remaining wait", async () => {
    let now = 1_000_000;
    const upstream = createFakeUpstream({ statusRates: { "500": 1 } });
    const config = loadConfig({ ...env, GOOGLE_BOOKS_ENABLED: "false" });
    const ctx: SourcesContext = {
      config,
      fetch: upstream.fetch,
      breakers: createProviderBreakers({ now: () => now }),
    };
    // Each call is a first try and two inline retries, and counts as one failure: five calls open it.
    for (let call = 1; call <= 5; call++) {
      expect(ctx.breakers.openlibrary.snapshot().state).toBe("closed");
      await expect(fetchAuthorWorks("Ann Author", ctx)).rejects.toMatchObject({ kind: "transient" });
    }
    expect(upstream.stats().total).toBe(15);
    expect(ctx.breakers.openlibrary.snapshot().state).toBe("open");
    // While open nothing is sent, and the author is "held back", not failed.
    const blocked = await fetchAuthorWorks("Ann Author", ctx).catch((e: AppError) => e);
    expect(blocked).toMatchObject({ code: "providers_held_back", kind: "transient", retryAfterSeconds: 15 });
    expect(upstream.stats().total).toBe(15);
    now += 15_000;
    upstream.configure({ statusRates: {} });
    const recovered = await fetchAuthorWorks("Ann Author", ctx);
    expect(recovered.works.length).toBeGreaterThan(0);
    expect(ctx.breakers.openlibrary.snapshot().state).toBe("closed");
  });
});

describe("what the breaker counts", () => {
  it("a half-open probe whose inline retry is refused reports the real upstream error and re-opens", async () => {
    let now = 0;
    const upstream = createFakeUpstream({ statusRates: { "500": 1 } });
    const config = loadConfig({ ...env, GOOGLE_BOOKS_ENABLED: "false" });
    const breakers = createProviderBreakers({ failureThreshold: 1, coolDownMs: 1000, now: () => now });
    const ctx: SourcesContext = { config, fetch: upstream.fetch, breakers };
    await fetchAuthorWorks("Ann Author", ctx).catch(() => undefined);
    expect(breakers.openlibrary.snapshot().state).toBe("open");
    now += 1000;
    const error = await fetchAuthorWorks("Ann Author", ctx).catch((e: AppError) => e);
    // The probe went out and failed; its inline retry was refused (the probe is still "in flight"), so
    // the call gives up with the 500 it got, counted as a failure, and the breaker is open again.
    expect(upstream.stats().total).toBe(4);
    expect(error).toMatchObject({ code: "upstream_unavailable", kind: "transient" });
    expect(breakers.openlibrary.snapshot().state).toBe("open");
  });

  it("blips absorbed by an inline retry and one author's failing query do not trip it", async () => {
    const upstream = createFakeUpstream({ failingAuthors: ["Always Fails"] });
    let tries = 0;
    // Two tries in three are a 500: each call's first try and first retry fail, its last retry succeeds.
    const flaky: typeof fetch = async (input, init) =>
      tries++ % 3 < 2 ? json({ error: "blip" }, 500) : upstream.fetch(input, init);
    const config = loadConfig({ ...env, GOOGLE_BOOKS_ENABLED: "false" });
    const breakers = createProviderBreakers({ failureThreshold: 2 });
    const blips: SourcesContext = { config, fetch: flaky, breakers };
    for (let call = 0; call < 4; call++) await fetchAuthorWorks("Peter Frankopan", blips);
    expect(breakers.openlibrary.snapshot()).toMatchObject({ state: "closed", consecutiveFailures: 0 });
    const ctx: SourcesContext = { config, fetch: upstream.fetch, breakers };
    for (let round = 0; round < 3; round++) {
      await expect(fetchAuthorWorks("Always Fails", ctx)).rejects.toMatchObject({ kind: "transient" });
      await fetchAuthorWorks("Peter Frankopan", ctx);
    }
    expect(breakers.openlibrary.snapshot()).toMatchObject({ state: "closed", consecutiveFailures: 0 });
    await expect(fetchAuthorWorks("Always Fails", ctx)).rejects.toMatchObject({ kind: "transient" });
    await expect(fetchAuthorWorks("Always Fails", ctx)).rejects.toMatchObject({ kind: "transient" });
    expect(breakers.openlibrary.snapshot().state).toBe("open");
  });
});

describe("two sources, settled", () => {
  it("one source failing while the other answers is a partial success recorded per source", async () => {
    const upstream = createFakeUpstream();
    const failingGoogle: typeof fetch = async (input, init) => {
      const url = new Request(input, init).url;
      if (url.includes("/books/v1/")) return json({ error: { code: 503 } }, 503);
      return upstream.fetch(input, init);
    };
    const ctx: SourcesContext = {
      config: loadConfig(env),
      fetch: failingGoogle,
      breakers: createProviderBreakers(),
    };
    const result = await fetchAuthorWorks("Peter Frankopan", ctx);
    expect(result.works.length).toBeGreaterThan(0);
    expect(result.reports).toEqual([
      expect.objectContaining({ source: "openlibrary", ok: true }),
      expect.objectContaining({
        source: "googlebooks",
        ok: false,
        error: expect.objectContaining({ kind: "transient" }),
      }),
    ]);
  });

  it("both sources describing the same books merge into records that name both", async () => {
    const upstream = createFakeUpstream();
    const ctx: SourcesContext = {
      config: loadConfig(env),
      fetch: upstream.fetch,
      breakers: createProviderBreakers(),
    };
    const result = await fetchAuthorWorks("Peter Frankopan", ctx);
    const both = result.works.filter((w) => w.sources.length === 2);
    expect(both.length).toBeGreaterThan(0);
    expect(new Set(result.works.map((w) => w.id)).size).toBe(result.works.length);
  });

  it("every source failing permanently is permanent; any transient failure makes it transient", async () => {
    const notFound: typeof fetch = async () => json({}, 404);
    const ctx: SourcesContext = {
      config: loadConfig(env),
      fetch: notFound,
      breakers: createProviderBreakers(),
    };
    await expect(fetchAuthorWorks("Ann Author", ctx)).rejects.toMatchObject({ kind: "permanent" });
    const mixed: typeof fetch = async (input, init) =>
      new Request(input, init).url.includes("/books/v1/") ? json({}, 500) : json({}, 404);
    await expect(fetchAuthorWorks("Ann Author", { ...ctx, fetch: mixed })).rejects.toMatchObject({
      kind: "transient",
    });
  });

  it("a request that would exceed the subrequest budget is refused before it is sent", async () => {
    const upstream = createFakeUpstream();
    const ctx: SourcesContext = {
      config: loadConfig(env),
      fetch: upstream.fetch,
      breakers: createProviderBreakers(),
      subrequests: new Budget("subrequest", 1),
    };
    await expect(fetchAuthorWorks("Peter Frankopan", ctx)).rejects.toMatchObject({
      code: "budget_exhausted",
    });
    expect(upstream.stats().total).toBe(1);
  });
});

describe("global rate limit", () => {
  it("R + 1 grants, each sent up to the late tolerance after its slot, still span a second plus the arrival allowance", () => {
    for (const rate of [1, 3, 7, 20, 50]) {
      const scheduler = new SlotScheduler();
      const slots = Array.from(
        { length: rate + 1 },
        () => scheduler.acquire(rate, 0, Number.POSITIVE_INFINITY).slotAt,
      );
      // The first request sent as late as tolerated, the last on time.
      expect((slots.at(-1) ?? 0) - ((slots[0] ?? 0) + lateSlotToleranceMs(rate))).toBeGreaterThanOrEqual(
        1000 + ARRIVAL_JITTER_ALLOWANCE_MS,
      );
      // ...while keeping at least 95% of R.
      expect(1000 / ((slots[1] ?? 0) - (slots[0] ?? 0))).toBeGreaterThanOrEqual(0.95 * rate);
    }
  });

  it("no one-second window ever holds more than R grants, whatever the callers' timing", () => {
    const scheduler = new SlotScheduler();
    const rate = 3;
    const grants: number[] = [];
    let now = 0;
    // 200 concurrent-looking callers arriving in bursts at random times.
    for (let i = 0; i < 200; i++) {
      now += i % 17 === 0 ? 900 : 3;
      const grant = scheduler.acquire(rate, now, Number.POSITIVE_INFINITY);
      grants.push(grant.slotAt);
    }
    grants.sort((a, b) => a - b);
    let worst = 0;
    for (let i = 0; i < grants.length; i++) {
      let j = i;
      while (j < grants.length && (grants[j] as number) < (grants[i] as number) + 1000) j++;
      worst = Math.max(worst, j - i);
    }
    expect(worst).toBeLessThanOrEqual(rate);
  });

  it("a caller that would wait too long reserves nothing and is told how long", () => {
    const scheduler = new SlotScheduler();
    for (let i = 0; i < 10; i++) scheduler.acquire(1, 0, 60_000);
    const refused = scheduler.acquire(1, 0, 5_000);
    expect(refused).toMatchObject({ granted: false, waitMs: 10 * slotSpacingMs(1) });
    expect(scheduler.acquire(1, 0, 60_000).slotAt).toBe(10 * slotSpacingMs(1));
  });

  it("the Durable Object limiter paces concurrent callers across the whole worker and honours pauses", async () => {
    const config = loadConfig({ ...env, OPENLIBRARY_RATE_PER_SECOND: "20" });
    const waits: number[] = [];
    const limiter = durableRateLimiter(env.RATE_LIMITER, config, {
      sleep: async (ms) => {
        waits.push(ms);
      },
    });
    const started = Date.now();
    await Promise.all(Array.from({ length: 40 }, () => limiter.acquire("openlibrary")));
    // 40 requests at 20/s, 52 ms apart: callers wait inside the object for their turn, so the last is answered
    // about 2 s after the first asked, each at most the grant lookahead before its slot (what is left to sleep).
    expect(Date.now() - started).toBeGreaterThanOrEqual(39 * slotSpacingMs(20) - GRANT_LOOKAHEAD_MS);
    expect(Math.max(...waits)).toBeLessThanOrEqual(GRANT_LOOKAHEAD_MS);
    await limiter.pause("openlibrary", 30);
    const afterPause: number[] = [];
    const paused = durableRateLimiter(env.RATE_LIMITER, config, {
      maxWaitMs: 5_000,
      sleep: async (ms) => {
        afterPause.push(ms);
      },
    });
    await expect(paused.acquire("openlibrary")).rejects.toMatchObject({
      code: "rate_limited_locally",
      kind: "transient",
    });
  });
});
