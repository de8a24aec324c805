/**
 * A web-standard fetch handler standing in for Open Library and Google Books, with fault injection.
 *
 * Usable directly as a drop-in `fetch` (`createFakeUpstream().fetch`) inside workerd/vitest, or behind the
 * Node http server in server.ts. Only the request's path and query matter; the origin is ignored.
 *
 * Book-API endpoints (faults apply):
 *   GET /search.json?author=NAME | ?q=author:NAME   Open Library search (limit, offset | page, fields);
 *       also ?isbn=X and ?title=T[&author=A], answered from every work generated so far
 *   GET /books/v1/volumes?q=inauthor:"NAME"          Google Books (startIndex, maxResults ≤ 40);
 *       also q=isbn:X and q=intitle:"T"[+inauthor:"A"]
 *   GET /authors/OL23919A.json, /authors/OL23919A/works.json, /works/OL3616800W.json,
 *       /isbn/9780140328721.json, /isbn/0140328726.json, /books/OL7353617M.json    recorded fixtures
 * Control endpoints (no faults, not counted in stats):
 *   GET /__stats · GET|POST /__config · POST /__reset · GET /health
 *
 * Fault order for a book-API request: rate limit (rateLimitPerSecond) → failing author → one random draw
 * split into [hang | 429 | each statusRates entry | malformed | normal] → latency → answer.
 * Web-standard APIs only: this module is also imported inside the workerd test runtime.
 */
import {
  authorKey,
  type CatalogueWork,
  fnv1a,
  hashFraction,
  mulberry32,
  worksForAuthor,
} from "./catalogue.ts";
import { exportBook, openLibraryKnowsIsbn } from "./export-catalogue.ts";
import { RECORDED_BODIES } from "./recorded.ts";

export interface FaultConfig {
  /** Added to every book-API answer, in milliseconds. */
  latencyMs: number;
  /** Fraction of requests answered with each status, e.g. {"500": 0.2, "503": 0.05}. */
  statusRates: Record<string, number>;
  /** Fraction answered 429 with Retry-After. */
  rate429: number;
  /** Value of Retry-After on 429/503 answers (seconds). */
  retryAfterSeconds: number;
  /** Fraction that never answer (until the request's AbortSignal fires; then the fetch rejects). */
  hangRate: number;
  /** Fraction answered 200 with a truncated, invalid JSON body. */
  malformedRate: number;
  /** 0 = off; above this many requests in the current 1-second window answer 429 (Retry-After: 1). */
  rateLimitPerSecond: number;
  /** Author names (compared by authorKey) that always get HTTP 500. */
  failingAuthors: string[];
  /** Plus this fraction of authors (decided by a hash of the author key) that always get HTTP 500. */
  failingAuthorFraction: number;
  /** ISBN-13s whose lookup always gets HTTP 500, and so does any grouped query that names one. */
  failingIsbns: string[];
  /** 0 = off; past this many Google Books requests (since the last reset) Google answers its daily-quota 429. */
  googleDailyQuota: number;
  /** 0 = off; per-API limits like rateLimitPerSecond, each counted on its own API's requests only. */
  openLibraryRateLimitPerSecond: number;
  googleBooksRateLimitPerSecond: number;
  /**
   * 0 = off; this fraction of all works (decided by a hash of the work key, so a larger fraction contains a
   * smaller one's works) is answered edited: first publish year + 1. The refresh bench's "the catalogue
   * changed" knob. Process-wide, like the remembered works below.
   */
  editedWorkFraction: number;
}

export interface UpstreamStats {
  /** Book-API (and unknown-path) requests; control endpoints are not counted. */
  total: number;
  byPath: Record<string, number>;
  /** Keyed by status code, plus "hang" for requests that were never answered. */
  byStatus: Record<string, number>;
  /** Key = floor(now / 1000) as a string → requests that arrived in that second. */
  perSecond: Record<string, number>;
  maxPerSecond: number;
  /** Distinct User-Agent headers seen (at most 20); "(none)" when a request had none. */
  userAgents: string[];
}

export interface FakeUpstream {
  /** Usable as a drop-in `fetch`. */
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
  /** Merge a patch into the current fault config (top-level merge; `statusRates` is replaced whole). */
  configure(patch: Partial<FaultConfig>): void;
  /** Clear counters and restore the fault config given at creation (and the default PRNG's seed). */
  reset(): void;
  stats(): UpstreamStats;
  /** The current fault config (a copy). */
  config(): FaultConfig;
}

export type FakeUpstreamOptions = Partial<FaultConfig> & {
  /** Clock for stats and the rate limiter (default Date.now). */
  now?: () => number;
  /** Source of fault draws in [0, 1) (default: mulberry32 seeded with 42, reseeded on reset). */
  random?: () => number;
};

export const DEFAULT_FAULTS: Readonly<FaultConfig> = Object.freeze({
  latencyMs: 0,
  statusRates: {},
  rate429: 0,
  retryAfterSeconds: 1,
  hangRate: 0,
  malformedRate: 0,
  rateLimitPerSecond: 0,
  failingAuthors: [],
  failingAuthorFraction: 0,
  failingIsbns: [],
  googleDailyQuota: 0,
  openLibraryRateLimitPerSecond: 0,
  googleBooksRateLimitPerSecond: 0,
  editedWorkFraction: 0,
});

const DEFAULT_SEED = 42;
const MAX_USER_AGENTS = 20;

// ---------------------------------------------------------------------------------------------------------
// Config validation
// ---------------------------------------------------------------------------------------------------------

const FRACTION_KEYS = [
  "rate429",
  "hangRate",
  "malformedRate",
  "failingAuthorFraction",
  "editedWorkFraction",
] as const;
const NON_NEGATIVE_KEYS = [
  "latencyMs",
  "retryAfterSeconds",
  "rateLimitPerSecond",
  "googleDailyQuota",
  "openLibraryRateLimitPerSecond",
  "googleBooksRateLimitPerSecond",
] as const;

function isFraction(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v) && v >= 0 && v <= 1;
}

/** Checks an untrusted `Partial<FaultConfig>` (e.g. a POST /__config body); throws TypeError if invalid. */
export function validateFaultPatch(patch: unknown): Partial<FaultConfig> {
  if (typeof patch !== "object" || patch === null || Array.isArray(patch)) {
    throw new TypeError("fault config must be a JSON object");
  }
  const out: Partial<FaultConfig> = {};
  for (const [key, value] of Object.entries(patch)) {
    if ((FRACTION_KEYS as readonly string[]).includes(key)) {
      if (!isFraction(value)) throw new TypeError(`${key} must be a number in [0, 1]`);
      out[key as (typeof FRACTION_KEYS)[number]] = value;
    } else if ((NON_NEGATIVE_KEYS as readonly string[]).includes(key)) {
      if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
        throw new TypeError(`${key} must be a non-negative number`);
      }
      out[key as (typeof NON_NEGATIVE_KEYS)[number]] = value;
    } else if (key === "statusRates") {
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        throw new TypeError('statusRates must be an object like {"500": 0.2}');
      }
      const rates: Record<string, number> = {};
      for (const [status, rate] of Object.entries(value)) {
        if (!/^[2-5]\d\d$/.test(status))
          throw new TypeError(`statusRates: "${status}" is not an HTTP status`);
        if (!isFraction(rate)) throw new TypeError(`statusRates["${status}"] must be a number in [0, 1]`);
        rates[status] = rate;
      }
      out.statusRates = rates;
    } else if (key === "failingAuthors" || key === "failingIsbns") {
      if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) {
        throw new TypeError(`${key} must be an array of strings`);
      }
      out[key] = [...value];
    } else {
      throw new TypeError(`unknown fault config key "${key}"`);
    }
  }
  return out;
}

function cloneConfig(c: FaultConfig): FaultConfig {
  return {
    ...c,
    statusRates: { ...c.statusRates },
    failingAuthors: [...c.failingAuthors],
    failingIsbns: [...c.failingIsbns],
  };
}

// ---------------------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------------------

type Api = "openlibrary" | "googlebooks";

interface Answer {
  status: number;
  body: string;
  headers?: Record<string, string>;
}

const JSON_HEADERS = { "content-type": "application/json; charset=utf-8" };

function json(status: number, body: unknown, headers?: Record<string, string>): Answer {
  return { status, body: JSON.stringify(body), ...(headers === undefined ? {} : { headers }) };
}

function toResponse(a: Answer): Response {
  const nullBody = a.status === 204 || a.status === 205 || a.status === 304;
  return new Response(nullBody ? null : a.body, {
    status: a.status,
    headers: { ...JSON_HEADERS, ...a.headers },
  });
}

const STATUS_TEXT: Record<number, [string, string]> = {
  400: ["Bad Request", "INVALID_ARGUMENT"],
  403: ["Forbidden", "PERMISSION_DENIED"],
  404: ["Not Found", "NOT_FOUND"],
  429: ["Too Many Requests", "RESOURCE_EXHAUSTED"],
  500: ["Internal Server Error", "INTERNAL"],
  502: ["Bad Gateway", "UNAVAILABLE"],
  503: ["Service Unavailable", "UNAVAILABLE"],
  504: ["Gateway Timeout", "DEADLINE_EXCEEDED"],
};

/** Google's answer once a key's (or the keyless pool's) requests per day are spent. */
function googleDailyLimit(): Answer {
  const message =
    "Quota exceeded for quota metric 'Queries' and limit 'Queries per day' of service 'books.googleapis.com'";
  return json(429, {
    error: {
      code: 429,
      message,
      errors: [{ message, domain: "usageLimits", reason: "dailyLimitExceeded" }],
      status: "RESOURCE_EXHAUSTED",
    },
  });
}

/** An error answer in the API's own shape: Google's `{error:{code,message,...}}` or Open Library's. */
function apiError(api: Api, status: number, message?: string, headers?: Record<string, string>): Answer {
  const [text, googleStatus] = STATUS_TEXT[status] ?? ["Error", "UNKNOWN"];
  const msg = message ?? text;
  if (api === "googlebooks") {
    const reason = status === 429 ? "rateLimitExceeded" : status === 400 ? "invalid" : "backendError";
    return json(
      status,
      {
        error: {
          code: status,
          message: msg,
          errors: [{ message: msg, domain: "global", reason }],
          status: googleStatus,
        },
      },
      headers,
    );
  }
  return json(status, { error: msg }, headers);
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException("The operation was aborted.", "AbortError");
}

/** Never settles unless `signal` aborts; then rejects like fetch does (with the signal's reason). */
function hangUntilAborted(signal: AbortSignal | undefined): Promise<never> {
  return new Promise<never>((_resolve, reject) => {
    if (signal === undefined) return;
    if (signal.aborted) return reject(abortReason(signal));
    signal.addEventListener("abort", () => reject(abortReason(signal)), { once: true });
  });
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      if (signal) reject(abortReason(signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener("abort", onAbort, { once: true });
  });
}

// ---------------------------------------------------------------------------------------------------------
// Lookups by ISBN and title: the catalogue is generated from author names, so it cannot be searched by
// ISBN or title directly. Every work the stand-in has generated is remembered here, which is what a
// read-after-warm (or a read of a book whose author was ever asked for) needs.
// ---------------------------------------------------------------------------------------------------------

const worksByIsbn = new Map<string, CatalogueWork>();
const worksByTitle = new Map<string, CatalogueWork[]>();
const knownWorkKeys = new Set<string>();

function titleKey(title: string): string {
  return title
    .normalize("NFKD")
    .replace(/\p{M}/gu, "")
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, " ")
    .trim();
}

/** The current `editedWorkFraction` (set by configure and reset). */
let editedFraction = 0;

/** A work as the edited catalogue answers it (see `editedWorkFraction`). */
function edited(w: CatalogueWork): CatalogueWork {
  if (editedFraction <= 0 || hashFraction(w.key, "edited") >= editedFraction) return w;
  return { ...w, firstPublishYear: w.firstPublishYear + 1 };
}

function rememberedWorksForAuthor(name: string): CatalogueWork[] {
  return rememberWorks(worksForAuthor(name)).map(edited);
}

function rememberWorks(works: CatalogueWork[]): CatalogueWork[] {
  for (const w of works) {
    if (knownWorkKeys.has(w.key)) continue;
    knownWorkKeys.add(w.key);
    for (const isbn of [...w.isbn13s, ...w.isbn10s]) worksByIsbn.set(isbn, w);
    const key = titleKey(w.title);
    worksByTitle.set(key, [...(worksByTitle.get(key) ?? []), w]);
  }
  return works;
}

/** A remembered work listing this ISBN, else a book of the bundled exports. */
function workByIsbn(raw: string): CatalogueWork | undefined {
  const isbn = raw.replace(/[^0-9Xx]/g, "").toUpperCase();
  const found = worksByIsbn.get(isbn) ?? exportBook(isbn);
  return found && edited(found);
}

/** `q=isbn:A OR isbn:B …` (Open Library's grouped lookup): the ISBNs, or null when q is not only that. */
export function isbnOrTerms(q: string | null): string[] | null {
  if (q === null) return null;
  const terms = q.split(/\s+OR\s+/);
  const isbns: string[] = [];
  for (const term of terms) {
    const m = /^\(?\s*isbn:\s*"?([0-9Xx-]+)"?\s*\)?$/.exec(term.trim());
    if (!m?.[1]) return null;
    isbns.push(m[1].replace(/-/g, "").toUpperCase());
  }
  return isbns.length > 0 ? isbns : null;
}

/**
 * Works listing any of the ISBNs, once each, as Open Library answers a grouped query: the work, with the
 * editions that matched under `editions.docs`. About 1 in 20 of the exports' ISBNs is unknown to Open
 * Library here (Google Books knows them), so the complement path is exercised.
 */
function worksForIsbns(isbns: readonly string[]): { work: CatalogueWork; matched: string[] }[] {
  const byKey = new Map<string, { work: CatalogueWork; matched: string[] }>();
  for (const isbn of isbns) {
    const found = worksByIsbn.get(isbn) ?? (openLibraryKnowsIsbn(isbn) ? exportBook(isbn) : undefined);
    if (!found) continue;
    const work = edited(found);
    const entry = byKey.get(work.key) ?? { work, matched: [] };
    entry.matched.push(isbn);
    byKey.set(work.key, entry);
  }
  return [...byKey.values()];
}

/** Works matching an ISBN and/or title (and author, when given), from everything generated so far. */
function searchWorks(query: {
  isbn: string | null;
  title: string | null;
  author: string | null;
}): CatalogueWork[] {
  if (query.author !== null) rememberedWorksForAuthor(query.author);
  let found: CatalogueWork[];
  if (query.isbn !== null) {
    const w = workByIsbn(query.isbn);
    found = w ? [w] : [];
  } else if (query.title !== null) {
    const wanted = titleKey(query.title);
    found = [...worksByTitle.entries()]
      .filter(([key]) => key.includes(wanted))
      .flatMap(([, works]) => works.map(edited));
  } else {
    found = query.author === null ? [] : rememberedWorksForAuthor(query.author);
  }
  if (query.author !== null && (query.isbn !== null || query.title !== null)) {
    const author = authorKey(query.author);
    found = found.filter((w) => w.authors.some((a) => authorKey(a) === author));
  }
  return found;
}

/** Whether a request asks for any of these ISBNs (OR-grouped `q`, `isbn=`, or Google's `q=isbn:`). */
function namesFailingIsbn(url: URL, failing: readonly string[]): boolean {
  const asked = [
    ...(isbnOrTerms(url.searchParams.get("q")) ?? []),
    url.searchParams.get("isbn") ?? "",
    googleTerm(url, "isbn") ?? "",
  ];
  return asked.some((isbn) => isbn !== "" && failing.includes(isbn));
}

/**
 * `q=author:"A" OR author:"B" …` (Open Library's OR-combined query): the names, or null when q is not
 * only author terms. Quoted names may hold anything but a double quote.
 */
export function authorOrTerms(q: string | null): string[] | null {
  if (q === null) return null;
  const names: string[] = [];
  const term = /\s*(?:OR\s+)?author:\s*(?:"([^"]*)"|(\S+))\s*/gy;
  let m: RegExpExecArray | null;
  let end = 0;
  for (m = term.exec(q); m !== null; m = term.exec(q)) {
    names.push((m[1] ?? m[2] ?? "").trim());
    end = term.lastIndex;
  }
  return names.length > 0 && end === q.length && names.every((n) => n !== "") ? names : null;
}

/** Open Library spells initials spaced ("A. A. Milne"), whatever spelling the query used. */
export function openLibrarySpelling(name: string): string {
  return name.replace(/\.(?=\p{L})/gu, ". ");
}

/**
 * One query for several authors: every work of each, once (a work two of them wrote appears once), author
 * by author in query order, with one `numFound` for the whole query and the usual paging.
 */
function openLibraryAuthorsSearch(url: URL, names: readonly string[]): Answer {
  const limit = intParam(url, "limit", 100);
  const offset = intParam(url, "offset", 0);
  if (limit === null || limit < 0 || offset === null || offset < 0) {
    return apiError("openlibrary", 400, "limit and offset must be non-negative integers");
  }
  const rawFields = url.searchParams.get("fields");
  const fieldList = rawFields === null ? [] : rawFields.split(",").map((f) => f.trim());
  const fields = rawFields === null || fieldList.includes("*") ? null : new Set(fieldList);
  const seen = new Set<string>();
  const works: CatalogueWork[] = [];
  for (const name of names) {
    for (const w of rememberedWorksForAuthor(name)) {
      if (seen.has(w.key)) continue;
      seen.add(w.key);
      works.push(w);
    }
  }
  const effLimit = Math.min(limit, 1000);
  return json(200, {
    numFound: works.length,
    start: offset,
    numFoundExact: true,
    num_found: works.length,
    q: url.searchParams.get("q") ?? "",
    offset,
    docs: works.slice(offset, offset + effLimit).map((w) => openLibraryDoc(w, fields)),
  });
}

/** Integer query parameter: `def` when absent, null when present but not an integer. */
function intParam(url: URL, name: string, def: number): number | null {
  const raw = url.searchParams.get(name);
  if (raw === null || raw.trim() === "") return def;
  const n = Number(raw);
  return Number.isInteger(n) ? n : null;
}

/** Open Library author: `author=NAME`, else `q=author:NAME` / `q=author:"NAME"`. */
function openLibraryAuthor(url: URL): string | null {
  const author = url.searchParams.get("author");
  if (author !== null && author.trim() !== "") return author;
  const q = url.searchParams.get("q");
  if (q === null) return null;
  const m = /(?:^|[\s(])author:\s*(?:"([^"]*)"|(.+))$/i.exec(q);
  const name = (m?.[1] ?? m?.[2] ?? "").trim();
  return name === "" ? null : name;
}

/** One `field:value` term of a Google Books `q` (quoted or up to the next `field:` term). */
function googleTerm(url: URL, field: string): string | null {
  const q = url.searchParams.get("q");
  if (q === null) return null;
  const m = new RegExp(`${field}:\\s*(?:"([^"]*)"|(.+?))\\s*(?=[\\s+]\\w+:|$)`, "i").exec(q);
  const value = (m?.[1] ?? m?.[2] ?? "").trim();
  return value === "" ? null : value;
}

/** Google Books author: `q=inauthor:"NAME"` or `q=inauthor:NAME` (up to the next `field:` term). */
function googleAuthor(url: URL): string | null {
  return googleTerm(url, "inauthor");
}

/** Deterministic 12-character Google Books volume id for a work. */
export function googleVolumeId(workKey: string): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
  const rng = mulberry32(fnv1a(`gbid:${workKey}`));
  let id = "";
  for (let i = 0; i < 12; i++) id += alphabet[Math.floor(rng() * alphabet.length)];
  return id;
}

// ---------------------------------------------------------------------------------------------------------
// Endpoints
// ---------------------------------------------------------------------------------------------------------

const OL_FIELDS = [
  "key",
  "title",
  "author_name",
  "author_key",
  "first_publish_year",
  "edition_count",
  "cover_i",
  "isbn",
  "language",
] as const;

function openLibraryDoc(w: CatalogueWork, fields: Set<string> | null): Record<string, unknown> {
  const full: Record<string, unknown> = {
    key: w.key,
    title: w.title,
    author_name: w.authors.map(openLibrarySpelling),
    author_key: w.authorKeys,
    first_publish_year: w.firstPublishYear,
    edition_count: w.editionCount,
    ...(w.coverId === null ? {} : { cover_i: w.coverId }),
    ...(w.isbn13s.length === 0 ? {} : { isbn: [...w.isbn13s, ...w.isbn10s] }),
    language: w.language,
  };
  if (fields === null) return full;
  const doc: Record<string, unknown> = {};
  for (const f of OL_FIELDS) if ((fields.has(f) || f === "isbn") && f in full) doc[f] = full[f];
  return doc;
}

function openLibrarySearch(url: URL, name: string | null): Answer {
  const limit = intParam(url, "limit", 100);
  const page = intParam(url, "page", 1);
  const offsetParam = intParam(url, "offset", Number.NaN);
  if (limit === null || limit < 0)
    return apiError("openlibrary", 400, "limit must be a non-negative integer");
  if (page === null || page < 1) return apiError("openlibrary", 400, "page must be a positive integer");
  if (offsetParam === null || offsetParam < 0) {
    return apiError("openlibrary", 400, "offset must be a non-negative integer");
  }
  const effLimit = Math.min(limit, 1000);
  const start = Number.isNaN(offsetParam) ? (page - 1) * effLimit : offsetParam;
  const rawFields = url.searchParams.get("fields");
  const fieldList = rawFields === null ? [] : rawFields.split(",").map((f) => f.trim());
  const fields = rawFields === null || fieldList.includes("*") ? null : new Set(fieldList);

  const isbnTerms = isbnOrTerms(url.searchParams.get("q"));
  if (isbnTerms !== null) return openLibraryIsbnSearch(url, isbnTerms, start, effLimit, fields);
  const isbn = url.searchParams.get("isbn");
  const title = url.searchParams.get("title");
  const works =
    isbn === null && title === null && name !== null
      ? rememberedWorksForAuthor(name)
      : searchWorks({ isbn, title, author: name });
  return json(200, {
    numFound: works.length,
    start,
    numFoundExact: true,
    num_found: works.length,
    q: url.searchParams.get("q") ?? "",
    offset: Number.isNaN(offsetParam) ? null : offsetParam,
    docs: works.slice(start, start + effLimit).map((w) => openLibraryDoc(w, fields)),
  });
}

function openLibraryIsbnSearch(
  url: URL,
  isbns: string[],
  start: number,
  limit: number,
  fields: Set<string> | null,
): Answer {
  const found = worksForIsbns(isbns);
  const withEditions = fields === null || fields.has("editions");
  return json(200, {
    numFound: found.length,
    start,
    numFoundExact: true,
    num_found: found.length,
    q: url.searchParams.get("q") ?? "",
    docs: found.slice(start, start + limit).map(({ work, matched }) => ({
      ...openLibraryDoc(work, fields),
      ...(withEditions
        ? {
            editions: {
              numFound: matched.length,
              start: 0,
              numFoundExact: true,
              docs: matched.map((isbn) => ({
                key: `/books/OL${fnv1a(isbn) + 1}M`,
                title: work.title,
                isbn: [isbn],
              })),
            },
          }
        : {}),
    })),
  });
}

function googleVolume(w: CatalogueWork): Record<string, unknown> {
  const id = googleVolumeId(w.key);
  const isbn13 = w.isbn13s[0];
  const isbn10 = w.isbn10s[0];
  // A 979 ISBN has no ISBN-10: the volume then lists its ISBN-13 alone.
  const industryIdentifiers =
    isbn13 !== undefined
      ? [
          { type: "ISBN_13", identifier: isbn13 },
          ...(isbn10 ? [{ type: "ISBN_10", identifier: isbn10 }] : []),
        ]
      : [{ type: "OTHER", identifier: `OCLC:${(fnv1a(w.key) % 900_000_000) + 100_000_000}` }];
  return {
    kind: "books#volume",
    id,
    selfLink: `https://www.googleapis.com/books/v1/volumes/${id}`,
    volumeInfo: {
      title: w.title,
      authors: w.authors,
      publishedDate: String(w.firstPublishYear),
      industryIdentifiers,
      language: w.language[0] === "eng" ? "en" : (w.language[0] ?? "en").slice(0, 2),
    },
  };
}

function googleBooksVolumes(url: URL, name: string | null): Answer {
  const startIndex = intParam(url, "startIndex", 0);
  const maxResults = intParam(url, "maxResults", 10);
  if (startIndex === null || startIndex < 0) {
    return apiError("googlebooks", 400, "Invalid value at 'start_index' (TYPE_INT32)");
  }
  if (maxResults === null || maxResults < 0 || maxResults > 40) {
    return apiError("googlebooks", 400, "Values must be within the range: [0, 40]");
  }
  const isbn = googleTerm(url, "isbn");
  const title = googleTerm(url, "intitle");
  const works =
    isbn === null && title === null && name !== null
      ? rememberedWorksForAuthor(name)
      : searchWorks({ isbn, title, author: name });
  const items = works.slice(startIndex, startIndex + maxResults).map(googleVolume);
  return json(200, {
    kind: "books#volumes",
    totalItems: works.length,
    ...(items.length === 0 ? {} : { items }),
  });
}

const FIXTURE_ROUTES: Record<string, keyof typeof RECORDED_BODIES> = {
  "/authors/OL23919A.json": "author",
  "/authors/OL23919A/works.json": "authorWorks",
  "/works/OL3616800W.json": "work",
  "/isbn/9780140328721.json": "isbn",
  "/isbn/0140328726.json": "isbn",
  "/books/OL7353617M.json": "edition",
};

const FIXTURE_PREFIXES = ["/authors/", "/works/", "/isbn/", "/books/"];

type Endpoint =
  | { kind: "search"; api: Api; author: string | null; authors?: string[] }
  | { kind: "volumes"; api: Api; author: string | null }
  | { kind: "fixture"; api: Api; path: string }
  | { kind: "unknown" };

function matchEndpoint(url: URL): Endpoint {
  const path = url.pathname;
  if (path === "/search.json") {
    const authors = authorOrTerms(url.searchParams.get("q"));
    if (authors !== null && authors.length > 1)
      return { kind: "search", api: "openlibrary", author: null, authors };
    return { kind: "search", api: "openlibrary", author: openLibraryAuthor(url) };
  }
  if (path === "/books/v1/volumes") return { kind: "volumes", api: "googlebooks", author: googleAuthor(url) };
  if (FIXTURE_PREFIXES.some((p) => path.startsWith(p))) return { kind: "fixture", api: "openlibrary", path };
  return { kind: "unknown" };
}

function answerEndpoint(ep: Endpoint, url: URL): Answer {
  switch (ep.kind) {
    case "search":
      if (ep.authors) return openLibraryAuthorsSearch(url, ep.authors);
      return ep.author === null &&
        !url.searchParams.has("isbn") &&
        !url.searchParams.has("title") &&
        isbnOrTerms(url.searchParams.get("q")) === null
        ? apiError("openlibrary", 400, "search.json needs author=, title=, isbn= or q=author:NAME")
        : openLibrarySearch(url, ep.author);
    case "volumes":
      return ep.author === null && googleTerm(url, "isbn") === null && googleTerm(url, "intitle") === null
        ? apiError("googlebooks", 400, "Missing query.")
        : googleBooksVolumes(url, ep.author);
    case "fixture": {
      const fixture = FIXTURE_ROUTES[ep.path];
      if (fixture === undefined) return json(404, { error: "notfound", key: ep.path.replace(/\.json$/, "") });
      return { status: 200, body: RECORDED_BODIES[fixture] };
    }
    case "unknown":
      return json(404, { error: "notfound", path: url.pathname });
  }
}

// ---------------------------------------------------------------------------------------------------------
// The fake upstream
// ---------------------------------------------------------------------------------------------------------

const CONTROL_PATHS = new Set(["/__stats", "/__config", "/__reset", "/health"]);

function toRequest(input: RequestInfo | URL, init?: RequestInit): Request {
  // Accept origin-less paths ("/search.json?...") as a convenience: only path + query matter.
  if (typeof input === "string" && input.startsWith("/"))
    return new Request(`http://fake-upstream${input}`, init);
  return new Request(input, init);
}

export function createFakeUpstream(options: FakeUpstreamOptions = {}): FakeUpstream {
  const { now = Date.now, random: injectedRandom, ...faultOptions } = options;
  const defaults: FaultConfig = cloneConfig({ ...DEFAULT_FAULTS, ...validateFaultPatch(faultOptions) });
  let config = cloneConfig(defaults);
  let random = injectedRandom ?? mulberry32(DEFAULT_SEED);

  let total = 0;
  let byPath: Record<string, number> = {};
  let byStatus: Record<string, number> = {};
  let perSecond: Record<string, number> = {};
  let maxPerSecond = 0;
  let userAgents: string[] = [];
  /** Google Books requests since the last reset, against `googleDailyQuota`. */
  let googleToday = 0;
  /** Requests per "api:second", for the per-API rate limits. */
  let perApiSecond: Record<string, number> = {};

  const bump = (rec: Record<string, number>, key: string): number => {
    const n = (rec[key] ?? 0) + 1;
    rec[key] = n;
    return n;
  };

  /** Records an arrival; returns how many requests have arrived in the current second (including this). */
  const recordArrival = (path: string, userAgent: string | null): number => {
    total++;
    bump(byPath, path);
    const inWindow = bump(perSecond, String(Math.floor(now() / 1000)));
    if (inWindow > maxPerSecond) maxPerSecond = inWindow;
    const ua = userAgent ?? "(none)";
    if (userAgents.length < MAX_USER_AGENTS && !userAgents.includes(ua)) userAgents.push(ua);
    return inWindow;
  };

  const configure = (patch: Partial<FaultConfig>): void => {
    config = cloneConfig({ ...config, ...validateFaultPatch(patch) });
    editedFraction = config.editedWorkFraction;
  };

  const reset = (): void => {
    config = cloneConfig(defaults);
    editedFraction = config.editedWorkFraction;
    if (injectedRandom === undefined) random = mulberry32(DEFAULT_SEED);
    total = 0;
    byPath = {};
    byStatus = {};
    perSecond = {};
    maxPerSecond = 0;
    userAgents = [];
    googleToday = 0;
    perApiSecond = {};
  };

  const stats = (): UpstreamStats => ({
    total,
    byPath: { ...byPath },
    byStatus: { ...byStatus },
    perSecond: { ...perSecond },
    maxPerSecond,
    userAgents: [...userAgents],
  });

  const isFailingAuthor = (name: string, c: FaultConfig): boolean => {
    const key = authorKey(name);
    return (
      c.failingAuthors.some((a) => authorKey(a) === key) ||
      (c.failingAuthorFraction > 0 && hashFraction(key, "failing") < c.failingAuthorFraction)
    );
  };

  const control = async (request: Request, path: string): Promise<Response> => {
    const method = request.method.toUpperCase() === "HEAD" ? "GET" : request.method.toUpperCase();
    if (path === "/health" && method === "GET") return toResponse(json(200, { ok: true }));
    if (path === "/__stats" && method === "GET") return toResponse(json(200, stats()));
    if (path === "/__config" && method === "GET") return toResponse(json(200, config));
    if (path === "/__config" && method === "POST") {
      let patch: unknown;
      try {
        patch = await request.json();
      } catch {
        return toResponse(json(400, { error: "body must be JSON" }));
      }
      try {
        configure(validateFaultPatch(patch));
      } catch (err) {
        return toResponse(json(400, { error: err instanceof Error ? err.message : String(err) }));
      }
      return toResponse(json(200, config));
    }
    if (path === "/__reset" && method === "POST") {
      reset();
      return toResponse(json(200, { ok: true, config }));
    }
    return toResponse(json(405, { error: `method ${method} not allowed on ${path}` }));
  };

  /** Decides the answer to a book-API request; `null` means "hang". */
  const decide = (
    request: Request,
    url: URL,
    ep: Endpoint,
    inWindow: number,
    c: FaultConfig,
  ): Answer | null => {
    if (ep.kind === "unknown") return answerEndpoint(ep, url);
    const api = ep.api;
    if (request.method !== "GET" && request.method !== "HEAD") {
      return apiError(api, 405, `method ${request.method} not allowed`);
    }
    const apiLimit =
      api === "openlibrary" ? c.openLibraryRateLimitPerSecond : c.googleBooksRateLimitPerSecond;
    const apiWindow = `${api}:${Math.floor(now() / 1000)}`;
    const inApiWindow = (perApiSecond[apiWindow] ?? 0) + 1;
    perApiSecond[apiWindow] = inApiWindow;
    if (apiLimit > 0 && inApiWindow > apiLimit) {
      return apiError(api, 429, "Too Many Requests", { "retry-after": "1" });
    }
    if (api === "googlebooks" && c.googleDailyQuota > 0 && ++googleToday > c.googleDailyQuota) {
      return googleDailyLimit();
    }
    if (c.rateLimitPerSecond > 0 && inWindow > c.rateLimitPerSecond) {
      return apiError(api, 429, "Too Many Requests", { "retry-after": "1" });
    }
    if (ep.kind !== "fixture" && ep.author !== null && isFailingAuthor(ep.author, c)) {
      return apiError(api, 500);
    }
    // A grouped query that names a failing author fails whole, as one bad term can fail a real query.
    if (ep.kind === "search" && ep.authors?.some((a) => isFailingAuthor(a, c))) return apiError(api, 500);
    if (ep.kind !== "fixture" && c.failingIsbns.length > 0 && namesFailingIsbn(url, c.failingIsbns)) {
      return apiError(api, 500);
    }

    // One draw, split into consecutive bands, so the configured fractions are exact and reproducible.
    const retryAfter = { "retry-after": String(c.retryAfterSeconds) };
    let u = random();
    if (u < c.hangRate) return null;
    u -= c.hangRate;
    if (u < c.rate429) return apiError(api, 429, "Too Many Requests", retryAfter);
    u -= c.rate429;
    for (const [status, rate] of Object.entries(c.statusRates)) {
      if (u < rate) {
        const code = Number(status);
        return apiError(api, code, undefined, code === 503 || code === 429 ? retryAfter : undefined);
      }
      u -= rate;
    }
    const answer = answerEndpoint(ep, url);
    if (u < c.malformedRate && answer.status === 200) {
      return { ...answer, body: answer.body.slice(0, Math.max(1, Math.floor(answer.body.length * 0.6))) };
    }
    return answer;
  };

  const fakeFetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = toRequest(input, init);
    const signal = init?.signal ?? request.signal ?? undefined;
    if (signal?.aborted) throw abortReason(signal);
    const url = new URL(request.url);
    const isHead = request.method.toUpperCase() === "HEAD";
    if (CONTROL_PATHS.has(url.pathname)) {
      const response = await control(request, url.pathname);
      return isHead ? new Response(null, response) : response;
    }

    const c = config; // snapshot: a concurrent configure() does not affect requests already in flight
    const inWindow = recordArrival(url.pathname, request.headers.get("user-agent"));
    const answer = decide(request, url, matchEndpoint(url), inWindow, c);
    if (answer === null) {
      bump(byStatus, "hang");
      return hangUntilAborted(signal);
    }
    bump(byStatus, String(answer.status));
    await sleep(c.latencyMs, signal);
    const response = toResponse(answer);
    return isHead ? new Response(null, response) : response;
  };

  return { fetch: fakeFetch, configure, reset, stats, config: () => cloneConfig(config) };
}
