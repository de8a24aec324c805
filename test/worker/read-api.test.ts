import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { createApp } from "../../src/api/app";
import { cacheKeys } from "../../src/cache/keys";
import { createKvBreaker } from "../../src/cache/kv";
import { createProviderBreakers } from "../../src/sources";
import type { Work } from "../../src/sources/types";
import { resetAll } from "../support/db";
import { call, callAsAdmin, TOKEN, uploadCsv, waitForJob } from "../support/http";
import { waitForStagesEnded } from "../support/lifecycle";
import { upstream } from "../support/upstream";

interface WorksBody {
  author: string;
  count: number;
  works: Work[];
}

const get = async (path: string) => {
  const response = await call(path);
  return {
    response,
    cache: response.headers.get("X-Cache"),
    body: (await response.json()) as Record<string, unknown>,
  };
};

async function warm(author: string): Promise<Work[]> {
  const { jobId } = (await (await uploadCsv(`Title,Author\nX,${author}\n`, "?maxDepth=0")).json()) as {
    jobId: string;
  };
  const done = (await waitForJob(jobId)) as { status: string };
  expect(done.status).toBe("completed");
  // Its verify stage re-warms missing entries: let it end before a test invalidates any.
  await waitForStagesEnded(jobId);
  const entry = await env.CACHE.get<WorksBody>(cacheKeys.authorWorks(author), "json");
  expect(entry?.works.length).toBeGreaterThan(0);
  return entry?.works ?? [];
}

describe("read API: cache-aside", () => {
  beforeEach(resetAll);

  it("GET /api/authors/:name/works: MISS fills the cache from the sources, then HIT", async () => {
    const first = await get("/api/authors/Peter%20Frankopan/works");
    expect(first.response.status).toBe(200);
    expect(first.cache).toBe("MISS");
    const requests = upstream.stats().total;
    expect(requests).toBeGreaterThan(0);
    const second = await get("/api/authors/peter%20%20frankopan/works");
    expect(second.cache).toBe("HIT");
    expect(second.body.count).toBe(first.body.count);
    expect(upstream.stats().total).toBe(requests);
  });

  it("GET /api/books/isbn/:isbn: MISS then HIT, ISBN-10 and hyphens accepted", async () => {
    const { body } = await get("/api/authors/Peter%20Frankopan/works");
    const work = (body.works as Work[]).find((w) => w.isbn13);
    expect(work?.isbn13).toBeTruthy();
    const isbn13 = work?.isbn13 ?? "";
    const miss = await get(`/api/books/isbn/${isbn13}`);
    expect(miss.response.status).toBe(200);
    expect(miss.cache).toBe("MISS");
    expect((miss.body.book as Work).title).toBe(work?.title);
    const hyphenated = `${isbn13.slice(0, 3)}-${isbn13.slice(3, 4)}-${isbn13.slice(4, 12)}-${isbn13.slice(12)}`;
    const hit = await get(`/api/books/isbn/${hyphenated}`);
    expect(hit.cache).toBe("HIT");
    if (isbn13.startsWith("978")) {
      const core = isbn13.slice(3, 12);
      let sum = 0;
      for (let i = 0; i < 9; i++) sum += Number(core[i]) * (10 - i);
      const check = (11 - (sum % 11)) % 11;
      const isbn10 = core + (check === 10 ? "X" : String(check));
      expect((await get(`/api/books/isbn/${isbn10}`)).cache).toBe("HIT");
    }
  });

  it("GET /api/books/search: MISS then HIT, with and without the author", async () => {
    const { body } = await get("/api/authors/Peter%20Frankopan/works");
    const work = (body.works as Work[])[0] as Work;
    const q = `title=${encodeURIComponent(work.title)}&author=${encodeURIComponent("Peter Frankopan")}`;
    const miss = await get(`/api/books/search?${q}`);
    expect(miss.cache).toBe("MISS");
    expect((miss.body.results as Work[])[0]?.title).toBe(work.title);
    const hit = await get(`/api/books/search?${q}`);
    expect(hit.cache).toBe("HIT");
    const titleOnly = await get(`/api/books/search?title=${encodeURIComponent(work.title.toUpperCase())}`);
    expect(titleOnly.cache).toBe("HIT");
    expect((titleOnly.body.results as Work[]).map((w) => w.id)).toContain(work.id);
  });

  it("unknown books and authors are 404s; a missing title is a 400", async () => {
    upstream.configure({});
    const unknownBook = await get("/api/books/isbn/9780000000002");
    expect(unknownBook.response.status).toBe(404);
    expect(unknownBook.cache).toBe("MISS");
    expect((unknownBook.body.error as { code: string }).code).toBe("book_not_found");
    const unknownAuthor = await get("/api/authors/zz-unknown%20person/works");
    expect(unknownAuthor.response.status).toBe(404);
    expect((await get("/api/books/search?author=Someone")).response.status).toBe(400);
  });

  it("bad ISBNs are 400s that say what is wrong", async () => {
    const cases: [string, string][] = [
      ["9780140328722", "check_digit"],
      ["0140328727", "check_digit"],
      ["97801403287", "length"],
      ["97801403287AB", "characters"],
    ];
    for (const [isbn, reason] of cases) {
      const { response, body } = await get(`/api/books/isbn/${isbn}`);
      expect(response.status).toBe(400);
      expect(body.error).toMatchObject({ code: "invalid_isbn", details: { reason } });
    }
  });

  it("an upstream outage on a miss is a 503 with Retry-After, not a 500", async () => {
    upstream.configure({ statusRates: { "503": 1 }, retryAfterSeconds: 9 });
    const { response, body } = await get("/api/authors/Nobody%20Cached/works");
    expect(response.status).toBe(503);
    expect(Number(response.headers.get("Retry-After"))).toBeGreaterThanOrEqual(9);
    expect((body.error as { code: string }).code).toBe("upstream_unavailable");
  });
});

describe("warm, then read: the warmer's keys are the reader's keys", () => {
  beforeEach(resetAll);

  it("every warmed work is a HIT by ISBN and by title, with no upstream call", async () => {
    const author = "Peter Frankopan";
    const works = await warm(author);
    const before = upstream.stats().total;
    let isbnReads = 0;
    for (const work of works) {
      if (work.isbn13) {
        const byIsbn = await get(`/api/books/isbn/${work.isbn13}`);
        expect(byIsbn.cache, `ISBN ${work.isbn13}`).toBe("HIT");
        isbnReads++;
      }
      const byTitle = await get(
        `/api/books/search?title=${encodeURIComponent(work.title)}&author=${encodeURIComponent(author)}`,
      );
      expect(byTitle.cache, `title ${work.title}`).toBe("HIT");
      expect((byTitle.body.results as Work[]).map((w) => w.id)).toContain(work.id);
    }
    expect(isbnReads).toBeGreaterThan(0);
    expect((await get(`/api/authors/${encodeURIComponent(author)}/works`)).cache).toBe("HIT");
    expect(upstream.stats().total).toBe(before);
  });
});

describe("invalidation", () => {
  beforeEach(resetAll);

  it("DELETE an author clears its list and marker, so the next read misses and the next upload warms it again", async () => {
    const author = "Peter Frankopan";
    await warm(author);
    expect(await env.CACHE.get(cacheKeys.processedMarker(author))).not.toBeNull();
    const unauthorized = await call(`/api/cache/authors/${encodeURIComponent(author)}`, { method: "DELETE" });
    expect(unauthorized.status).toBe(401);
    const response = await call(`/api/cache/authors/${encodeURIComponent(author)}`, {
      method: "DELETE",
      headers: { Authorization: `Bearer ${TOKEN}` },
    });
    expect(response.status).toBe(200);
    expect(await env.CACHE.get(cacheKeys.processedMarker(author))).toBeNull();
    expect(await env.CACHE.get(cacheKeys.authorWorks(author))).toBeNull();

    const { jobId } = (await (await uploadCsv(`Title,Author\nX,${author}\n`, "?maxDepth=0")).json()) as {
      jobId: string;
    };
    const rewarmed = (await waitForJob(jobId)) as { counts: Record<string, number> };
    expect(rewarmed.counts).toMatchObject({ done: 1, skipped: 0 });
    // And a third upload, with the marker back, is skipped.
    const { jobId: third } = (await (
      await uploadCsv(`Title,Author\nX,${author}\n`, "?maxDepth=0")
    ).json()) as { jobId: string };
    expect(((await waitForJob(third)) as { counts: Record<string, number> }).counts).toMatchObject({
      skipped: 1,
    });
  });

  it("DELETE a book by ISBN clears its ISBN and title entries", async () => {
    const works = await warm("Peter Frankopan");
    const work = works.find((w) => w.isbn13) as Work;
    const response = await call(`/api/cache/books/isbn/${work.isbn13}`, {
      method: "DELETE",
      headers: { Authorization: `Bearer ${TOKEN}` },
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ found: true });
    expect(await env.CACHE.get(cacheKeys.bookByIsbn(work.isbn13 ?? ""))).toBeNull();
    expect(await env.CACHE.get(cacheKeys.bookByTitle(work.title, work.authors[0] ?? ""))).toBeNull();
    expect((await get(`/api/books/isbn/${work.isbn13}`)).cache).toBe("MISS");
  });

  it("a re-warm that finds new works replaces the stale list", async () => {
    const author = "Peter Frankopan";
    const stale = {
      author,
      works: [{ id: "isbn:stale", title: "Stale" }],
      updatedAt: "2020-01-01T00:00:00.000Z",
    };
    await env.CACHE.put(cacheKeys.authorWorks(author), JSON.stringify(stale));
    const works = await warm(author);
    expect(works.map((w) => w.title)).not.toContain("Stale");
  });
});

describe("fail-open cache", () => {
  beforeEach(resetAll);

  it("reads answer from the source while KV fails; the breaker opens after 3 failures and half-opens after 15 s", async () => {
    let now = 1_000_000;
    let kvCalls = 0;
    const failing = new Proxy(env.CACHE, {
      get: () => () => {
        kvCalls++;
        return Promise.reject(new Error("KV is down"));
      },
    });
    const kvBreaker = createKvBreaker(() => now);
    const app = createApp({ kvBreaker, providerBreakers: createProviderBreakers(), fetch: upstream.fetch });
    const brokenEnv = { ...env, CACHE: failing } as Env;
    const request = async (path: string) => {
      const ctx = createExecutionContext();
      const response = await app.fetch(new Request(`http://kindling.test${path}`), brokenEnv, ctx);
      await waitOnExecutionContext(ctx);
      return response;
    };

    const first = await request("/api/authors/Peter%20Frankopan/works");
    expect(first.status).toBe(200);
    expect(first.headers.get("X-Cache")).toBe("MISS");
    // One failed get and one failed put: two consecutive failures, still closed.
    expect(kvCalls).toBe(2);
    expect(kvBreaker.snapshot().state).toBe("closed");
    await request("/api/authors/Peter%20Frankopan/works");
    expect(kvBreaker.snapshot()).toMatchObject({ state: "open", consecutiveFailures: 3 });
    const callsWhenOpened = kvCalls;
    const bypassed = await request("/api/authors/Peter%20Frankopan/works");
    expect(bypassed.status).toBe(200);
    expect(kvCalls).toBe(callsWhenOpened);

    const health = (await (await request("/health")).json()) as {
      breakers: { kv: { state: string } };
      checks: { kv: { ok: boolean } };
    };
    expect(health.breakers.kv.state).toBe("open");
    expect(health.checks.kv.ok).toBe(false);

    now += 15_000;
    expect(kvBreaker.snapshot().state).toBe("half-open");
    await request("/api/authors/Peter%20Frankopan/works");
    // Exactly one probe went to KV (it failed, so the breaker opened again).
    expect(kvCalls).toBe(callsWhenOpened + 2); // health's raw probe + the breaker's one probe
    expect(kvBreaker.snapshot().state).toBe("open");
  });
});

describe("hit rate", () => {
  beforeEach(resetAll);

  it("GET /api/analytics/cache counts hits and misses per hour after a known sequence of reads", async () => {
    await get("/api/authors/Peter%20Frankopan/works"); // miss
    await get("/api/authors/Peter%20Frankopan/works"); // hit
    await get("/api/authors/Peter%20Frankopan/works"); // hit
    await get("/api/authors/Mary%20Beard/works"); // miss
    await get("/api/books/isbn/9780140328722"); // 400: not a read, not counted
    let stats:
      | { totals: { hits: number; misses: number; rate: number | null }; rows: { hits: number }[] }
      | undefined;
    for (let i = 0; i < 50; i++) {
      stats = (await (await callAsAdmin("/api/analytics/cache?hours=24")).json()) as typeof stats;
      if ((stats?.totals.hits ?? 0) + (stats?.totals.misses ?? 0) >= 4) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(stats?.totals).toEqual({ hits: 2, misses: 2, rate: 0.5 });
    // One row per hour of the window, the reads all in the current (last) one.
    expect(stats?.rows).toHaveLength(24);
    expect(stats?.rows.at(-1)).toMatchObject({ hits: 2, misses: 2, rate: 0.5 });
    expect((await callAsAdmin("/api/analytics/cache?hours=0")).status).toBe(400);
  });
});
