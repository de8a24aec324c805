import { describe, expect, it } from "vitest";
import { z } from "zod";
import { QuotaExhaustedError } from "../../src/errors";
import { getJson } from "../../src/sources/http";
import { worksForAuthor } from "../support/upstream/catalogue.ts";
import { EXPORT_BOOKS } from "../support/upstream/export-books.ts";
import { openLibraryKnowsIsbn } from "../support/upstream/export-catalogue.ts";
import { createFakeUpstream } from "../support/upstream/handler.ts";

const BASE = "https://fake.example";

interface Search {
  numFound: number;
  start: number;
  docs: { key: string; author_name: string[]; isbn?: string[]; editions?: { docs: { isbn: string[] }[] } }[];
}

async function search(q: string, extra = ""): Promise<Search> {
  const up = createFakeUpstream();
  const response = await up.fetch(`${BASE}/search.json?q=${encodeURIComponent(q)}${extra}`);
  expect(response.status).toBe(200);
  return (await response.json()) as Search;
}

describe("the stand-in's grouped Open Library queries", () => {
  it("answers OR-combined author terms with every work of each, one numFound, and pages", async () => {
    const names = ["Grouped Stand-in A", "Grouped Stand-in B", "Grouped Stand-in C"];
    const total = names.reduce((n, name) => n + worksForAuthor(name).length, 0);
    const q = names.map((n) => `author:"${n}"`).join(" OR ");
    const all = await search(q, "&limit=1000");
    expect(all.numFound).toBe(total);
    expect(all.docs).toHaveLength(total);
    const page = await search(q, "&limit=5&offset=5");
    expect(page.numFound).toBe(total);
    expect(page.start).toBe(5);
    expect(page.docs.map((d) => d.key)).toEqual(all.docs.slice(5, 10).map((d) => d.key));
  });

  it("spells initials as Open Library does, whichever spelling was asked for", async () => {
    const answer = await search('author:"A.A. Milne" OR author:"Somebody Else"', "&limit=1000");
    const names = new Set(answer.docs.flatMap((d) => d.author_name));
    expect(names.has("A. A. Milne")).toBe(true);
    expect(names.has("A.A. Milne")).toBe(false);
  });

  it("answers OR-combined ISBNs with each work once and the matching editions; unknown ISBNs add nothing", async () => {
    const known = EXPORT_BOOKS.filter(([isbn]) => openLibraryKnowsIsbn(isbn))
      .slice(0, 3)
      .map(([i]) => i);
    const unknown = EXPORT_BOOKS.find(([isbn]) => !openLibraryKnowsIsbn(isbn))?.[0] as string;
    const answer = await search([...known, unknown, "9780000000002"].map((i) => `isbn:${i}`).join(" OR "));
    expect(answer.numFound).toBe(3);
    for (const isbn of known) {
      const doc = answer.docs.find((d) => d.isbn?.includes(isbn));
      expect(doc?.editions?.docs[0]?.isbn).toEqual([isbn]);
    }
  });
});

describe("the stand-in's limits", () => {
  it("limits each API on its own rate, and answers Google's daily quota with its daily-limit 429", async () => {
    const up = createFakeUpstream({
      googleBooksRateLimitPerSecond: 1,
      googleDailyQuota: 2,
      now: () => 1_000_000,
    });
    const google = () => up.fetch(`${BASE}/books/v1/volumes?q=${encodeURIComponent('inauthor:"Anyone"')}`);
    const ol = () => up.fetch(`${BASE}/search.json?author=Anyone`);
    expect((await google()).status).toBe(200);
    const second = await google();
    expect(second.status).toBe(429);
    expect(await second.text()).not.toMatch(/per day/);
    // Open Library is not limited by Google's rate.
    expect((await ol()).status).toBe(200);
    expect((await ol()).status).toBe(200);
    const later = createFakeUpstream({ googleDailyQuota: 1 });
    await later.fetch(`${BASE}/books/v1/volumes?q=isbn:9780141026169`);
    const spent = await later.fetch(`${BASE}/books/v1/volumes?q=isbn:9780141026169`);
    expect(spent.status).toBe(429);
    expect(await spent.text()).toMatch(/dailyLimitExceeded/);
  });

  it("makes Kindling's client see a spent Google quota (429 per day, 403 dailyLimitExceeded), not a slow-down", async () => {
    const up = createFakeUpstream({ googleDailyQuota: 1 });
    const deps = { fetch: up.fetch, userAgent: "test", timeoutMs: 1000, sleep: async () => {} };
    const url = `${BASE}/books/v1/volumes?q=isbn:9780141026169`;
    await getJson("googlebooks", url, z.unknown(), deps);
    await expect(getJson("googlebooks", url, z.unknown(), deps)).rejects.toBeInstanceOf(QuotaExhaustedError);
    const forbidden: typeof fetch = async () =>
      new Response(JSON.stringify({ error: { code: 403, errors: [{ reason: "dailyLimitExceeded" }] } }), {
        status: 403,
      });
    await expect(
      getJson("googlebooks", url, z.unknown(), { ...deps, fetch: forbidden }),
    ).rejects.toBeInstanceOf(QuotaExhaustedError);
    // A plain per-second 429 stays a transient "slow down".
    const slowDown: typeof fetch = async () =>
      new Response(
        JSON.stringify({
          error: { code: 429, status: "RESOURCE_EXHAUSTED", errors: [{ reason: "rateLimitExceeded" }] },
        }),
        {
          status: 429,
        },
      );
    const error = await getJson("googlebooks", url, z.unknown(), {
      ...deps,
      fetch: slowDown,
      inlineRetries: 0,
    }).catch((e: unknown) => e);
    expect(error).not.toBeInstanceOf(QuotaExhaustedError);
    expect((error as { code: string }).code).toBe("upstream_rate_limited");
  });
});
