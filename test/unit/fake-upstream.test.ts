import { describe, expect, it } from "vitest";
import { authorKey, CO_AUTHOR_POOL, worksForAuthor } from "../support/upstream/catalogue.ts";
import { createFakeUpstream, type FakeUpstream } from "../support/upstream/handler.ts";

const BASE = "https://fake.example";

interface OpenLibrarySearch {
  numFound: number;
  start: number;
  numFoundExact: boolean;
  docs: Array<{ key: string; title: string; author_name: string[]; author_key: string[]; isbn?: string[] }>;
}

interface GoogleVolumes {
  kind: string;
  totalItems: number;
  items?: Array<{
    id: string;
    volumeInfo: {
      title: string;
      authors: string[];
      industryIdentifiers: Array<{ type: string; identifier: string }>;
    };
  }>;
}

async function search(up: FakeUpstream, author: string, query = ""): Promise<Response> {
  return up.fetch(`${BASE}/search.json?author=${encodeURIComponent(author)}${query}`);
}

async function volumes(up: FakeUpstream, author: string, query = ""): Promise<Response> {
  return up.fetch(`${BASE}/books/v1/volumes?q=${encodeURIComponent(`inauthor:"${author}"`)}${query}`);
}

/** Independent ISBN checks (not the catalogue's own helpers). */
function validIsbn13(s: string): boolean {
  if (!/^97[89]\d{10}$/.test(s)) return false;
  const sum = [...s].reduce((acc, d, i) => acc + Number(d) * (i % 2 === 0 ? 1 : 3), 0);
  return sum % 10 === 0;
}

function validIsbn10(s: string): boolean {
  if (!/^\d{9}[\dX]$/.test(s)) return false;
  const sum = [...s].reduce((acc, d, i) => acc + (d === "X" ? 10 : Number(d)) * (10 - i), 0);
  return sum % 11 === 0;
}

function prolificAuthor(): string {
  for (let i = 0; i < 1000; i++) {
    const name = `Paging Author ${i}`;
    if (worksForAuthor(name).length >= 60) return name;
  }
  throw new Error("no prolific author in 1000 names");
}

describe("fake upstream catalogue", () => {
  it("normalises author keys", () => {
    expect(authorKey("  Tom \t Chivers ")).toBe("tom chivers");
    expect(authorKey("Zoe\u0308 Bronte\u0308")).toBe(authorKey("Zoë Brontë"));
  });

  it("is deterministic and keeps the queried spelling as primary author", () => {
    const a = worksForAuthor("Peter Frankopan");
    expect(worksForAuthor("Peter Frankopan")).toEqual(a);
    expect(a.length).toBeGreaterThanOrEqual(3);
    for (const w of a) expect(w.authors[0]).toBe("Peter Frankopan");
    // Same author, other spelling: same books, primary spelled as given.
    const b = worksForAuthor("peter  FRANKOPAN");
    expect(b.map((w) => w.key)).toEqual(a.map((w) => w.key));
    expect(b[0]?.authors[0]).toBe("peter  FRANKOPAN");
  });

  it("has valid ISBN-13/ISBN-10 pairs and ~10% of works without ISBN", () => {
    let works = 0;
    let withoutIsbn = 0;
    for (let i = 0; i < 200; i++) {
      for (const w of worksForAuthor(`Isbn Author ${i}`)) {
        works++;
        if (w.isbn13s.length === 0) withoutIsbn++;
        expect(w.isbn10s).toHaveLength(w.isbn13s.length);
        w.isbn13s.forEach((isbn13, j) => {
          expect(validIsbn13(isbn13), isbn13).toBe(true);
          const isbn10 = w.isbn10s[j] ?? "";
          expect(validIsbn10(isbn10), isbn10).toBe(true);
          expect(isbn13.slice(3, 12)).toBe(isbn10.slice(0, 9));
        });
      }
    }
    expect(withoutIsbn / works).toBeGreaterThan(0.05);
    expect(withoutIsbn / works).toBeLessThan(0.15);
  });

  it("gives roughly one author in five a co-author from the pool", () => {
    let withCoAuthor = 0;
    for (let i = 0; i < 1000; i++) {
      const name = `Generated Author ${i}`;
      const coAuthored = worksForAuthor(name).filter((w) => w.authors.length > 1);
      if (coAuthored.length > 0) withCoAuthor++;
      expect(coAuthored.length).toBeLessThanOrEqual(2);
      for (const w of coAuthored) {
        expect(CO_AUTHOR_POOL).toContain(w.authors[1]);
        expect(w.authorKeys).toHaveLength(2);
      }
    }
    expect(withCoAuthor / 1000).toBeGreaterThanOrEqual(0.15);
    expect(withCoAuthor / 1000).toBeLessThanOrEqual(0.25);
  });

  it("builds J. K. Rowling from the recorded fixture and knows no zz-unknown authors", () => {
    const rowling = worksForAuthor("J. K. Rowling");
    expect(rowling.map((w) => w.key)).toContain("/works/OL82563W");
    expect(rowling.every((w) => w.authorKeys[0] === "OL23919A")).toBe(true);
    expect(worksForAuthor("zz-unknown author")).toEqual([]);
  });
});

describe("fake upstream handler", () => {
  it("answers identically twice, across instances", async () => {
    const one = await (await search(createFakeUpstream(), "Peter Frankopan")).text();
    const up = createFakeUpstream();
    const two = await (await search(up, "Peter Frankopan")).text();
    const three = await (await search(up, "Peter Frankopan")).text();
    expect(two).toBe(one);
    expect(three).toBe(one);
    const gb1 = await (await volumes(up, "Peter Frankopan")).text();
    const gb2 = await (await volumes(createFakeUpstream(), "Peter Frankopan")).text();
    expect(gb2).toBe(gb1);
  });

  it("pages Open Library search exactly (limit/offset and page)", async () => {
    const up = createFakeUpstream();
    const name = prolificAuthor();
    const first = (await (await search(up, name, "&limit=25")).json()) as OpenLibrarySearch;
    expect(first.numFound).toBeGreaterThanOrEqual(60);
    const keys: string[] = [];
    for (let offset = 0; offset < first.numFound; offset += 25) {
      const page = (await (await search(up, name, `&limit=25&offset=${offset}`)).json()) as OpenLibrarySearch;
      expect(page.start).toBe(offset);
      keys.push(...page.docs.map((d) => d.key));
    }
    expect(keys).toHaveLength(first.numFound);
    expect(new Set(keys).size).toBe(first.numFound);
    const page2 = (await (await search(up, name, "&limit=25&page=2")).json()) as OpenLibrarySearch;
    expect(page2.docs.map((d) => d.key)).toEqual(keys.slice(25, 50));
    const past = (await (await search(up, name, `&offset=${first.numFound}`)).json()) as OpenLibrarySearch;
    expect(past.docs).toEqual([]);
  });

  it("pages Google Books with the same books and ISBNs, omitting items past the end", async () => {
    const up = createFakeUpstream();
    const name = prolificAuthor();
    const ol = (await (await search(up, name, "&limit=1000")).json()) as OpenLibrarySearch;
    const olIsbns = new Set(ol.docs.flatMap((d) => d.isbn ?? []));
    const ids: string[] = [];
    let total = Number.POSITIVE_INFINITY;
    for (let start = 0; start < total; start += 40) {
      const res = await volumes(up, name, `&startIndex=${start}&maxResults=40`);
      expect(res.status).toBe(200);
      const page = (await res.json()) as GoogleVolumes;
      total = page.totalItems;
      for (const item of page.items ?? []) {
        expect(item.id).toMatch(/^[A-Za-z0-9_-]{12}$/);
        ids.push(item.id);
        for (const id of item.volumeInfo.industryIdentifiers) {
          if (id.type !== "OTHER") expect(olIsbns.has(id.identifier)).toBe(true);
        }
      }
    }
    expect(total).toBe(ol.numFound);
    expect(new Set(ids).size).toBe(total);
    const empty = (await (
      await volumes(up, name, `&startIndex=${total}&maxResults=40`)
    ).json()) as GoogleVolumes;
    expect(empty.totalItems).toBe(total);
    expect(empty).not.toHaveProperty("items");
  });

  it("rejects Google Books maxResults above 40 with Google's error shape", async () => {
    const res = await volumes(createFakeUpstream(), "Peter Frankopan", "&maxResults=41");
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: number; message: string } };
    expect(body.error.code).toBe(400);
    expect(body.error.message).toBeTruthy();
  });

  it("serves ISBNs with valid check digits in both APIs", async () => {
    const up = createFakeUpstream();
    for (const name of ["Peter Frankopan", "Tom Chivers", "Zoë Brontë-Kovács"]) {
      const ol = (await (await search(up, name)).json()) as OpenLibrarySearch;
      for (const isbn of ol.docs.flatMap((d) => d.isbn ?? [])) {
        expect(isbn.length === 13 ? validIsbn13(isbn) : validIsbn10(isbn), isbn).toBe(true);
      }
      const gb = (await (await volumes(up, name, "&maxResults=40")).json()) as GoogleVolumes;
      for (const id of (gb.items ?? []).flatMap((i) => i.volumeInfo.industryIdentifiers)) {
        if (id.type === "ISBN_13") expect(validIsbn13(id.identifier), id.identifier).toBe(true);
        if (id.type === "ISBN_10") expect(validIsbn10(id.identifier), id.identifier).toBe(true);
      }
    }
  });

  it("serves recorded fixtures and 404s the rest", async () => {
    const up = createFakeUpstream();
    const isbn = await up.fetch(`${BASE}/isbn/0140328726.json`);
    expect(isbn.status).toBe(200);
    expect(((await isbn.json()) as { title: string }).title).toBe("Fantastic Mr. Fox");
    const works = await up.fetch(`${BASE}/authors/OL23919A/works.json`);
    expect(((await works.json()) as { entries: unknown[] }).entries).toHaveLength(50);
    const missing = await up.fetch(`${BASE}/works/OL1W.json`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: string }).error).toBe("notfound");
    expect((await up.fetch(`${BASE}/nowhere`)).status).toBe(404);
    const unknown = (await (await search(up, "zz-unknown-someone")).json()) as OpenLibrarySearch;
    expect(unknown.numFound).toBe(0);
    expect(unknown.docs).toEqual([]);
  });

  it("always answers 500 for failing authors, compared by author key", async () => {
    const up = createFakeUpstream({ failingAuthors: ["Tom  Chivers"] });
    expect((await search(up, "tom chivers")).status).toBe(500);
    expect((await volumes(up, "TOM CHIVERS")).status).toBe(500);
    expect((await search(up, "Peter Frankopan")).status).toBe(200);
    up.configure({ failingAuthors: [], failingAuthorFraction: 1 });
    expect((await search(up, "Peter Frankopan")).status).toBe(500);
    up.reset();
    expect((await search(up, "tom chivers")).status).toBe(500); // creation defaults restored
    expect((await search(up, "Peter Frankopan")).status).toBe(200);
  });

  it("enforces rateLimitPerSecond per 1-second window of the injected clock", async () => {
    let t = 1_700_000_000_000;
    const up = createFakeUpstream({ rateLimitPerSecond: 3, now: () => t });
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await search(up, `Rate ${i}`)).status);
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    const limited = await search(up, "Rate 5");
    expect(limited.headers.get("retry-after")).toBe("1");
    t += 1000;
    expect((await search(up, "Rate 6")).status).toBe(200);
    const stats = up.stats();
    expect(stats.perSecond).toEqual({
      [String(Math.floor((t - 1000) / 1000))]: 6,
      [String(Math.floor(t / 1000))]: 1,
    });
    expect(stats.maxPerSecond).toBe(6);
    expect(stats.byStatus).toEqual({ "200": 4, "429": 3 });
  });

  it("draws status faults reproducibly and leaves control endpoints alone", async () => {
    const run = async (): Promise<number[]> => {
      const up = createFakeUpstream({ statusRates: { "500": 0.5 } });
      expect((await up.fetch(`${BASE}/health`)).status).toBe(200);
      const out: number[] = [];
      for (let i = 0; i < 40; i++) out.push((await search(up, `Fault ${i}`)).status);
      expect(up.stats().total).toBe(40);
      return out;
    };
    const first = await run();
    expect(await run()).toEqual(first);
    const failures = first.filter((s) => s === 500).length;
    expect(failures).toBeGreaterThan(8);
    expect(failures).toBeLessThan(32);
  });

  it("hangs with hangRate=1 until the request's AbortSignal aborts", async () => {
    const up = createFakeUpstream({ hangRate: 1 });
    const controller = new AbortController();
    const pending = up.fetch(`${BASE}/search.json?author=Hang`, { signal: controller.signal });
    const outcome = await Promise.race([
      pending.then(
        () => "resolved",
        () => "rejected",
      ),
      new Promise((resolve) => setTimeout(() => resolve("pending"), 50)),
    ]);
    expect(outcome).toBe("pending");
    controller.abort();
    await expect(pending).rejects.toMatchObject({ name: "AbortError" });
    expect(up.stats().byStatus).toEqual({ hang: 1 });
  });
});
