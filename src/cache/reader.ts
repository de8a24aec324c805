import type { Config } from "../config";
import { AppError, classifyFailure } from "../errors";
import { authorKey, normalizeTitle } from "../ingest/normalize";
import type { Allowance } from "../lib/budget";
import {
  type AuthorWorksResult,
  fetchAuthorWorks,
  type ProviderBreakers,
  type RateLimiter,
  searchBooks,
} from "../sources";
import type { Work } from "../sources/types";
import { cacheKeys, TTL_SECONDS } from "./keys";
import type { Cache } from "./kv";
import type { ReadAllowance } from "./read-allowance";

/** What the read API answers with: the data and whether the cache had it. */
export interface CacheAnswer<T> {
  value: T;
  hit: boolean;
}

export interface ReaderContext {
  cache: Cache;
  config: Config;
  fetch: typeof fetch;
  breakers: ProviderBreakers;
  rateLimiter?: RateLimiter | undefined;
  subrequests?: Allowance | undefined;
  /** Spent before each miss goes upstream (the public read allowance); absent = unlimited. */
  allowance?: ReadAllowance | undefined;
}

/** The value an author's works are cached under (and the warmer writes). */
export interface AuthorWorksEntry {
  author: string;
  works: Work[];
  updatedAt: string;
}

/**
 * A miss goes to the sources, once the caller's read allowance grants it (else 429); their failures
 * become a 503 the client can retry, never a 500.
 */
async function fromSources(
  ctx: ReaderContext,
  load: () => Promise<AuthorWorksResult>,
): Promise<AuthorWorksResult> {
  await ctx.allowance?.();
  try {
    return await load();
  } catch (error) {
    const failure = classifyFailure(error);
    if (failure.kind === "transient") {
      throw new AppError({
        code: "upstream_unavailable",
        message: `the book sources could not answer: ${failure.message}`,
        httpStatus: 503,
        kind: "transient",
        retryAfterSeconds: Math.max(1, failure.retryAfterSeconds ?? 5),
      });
    }
    throw new AppError({
      code: "upstream_rejected",
      message: `the book sources refused the lookup: ${failure.message}`,
      httpStatus: 502,
      kind: "permanent",
    });
  }
}

function sourcesContext(ctx: ReaderContext) {
  return {
    config: ctx.config,
    fetch: ctx.fetch,
    breakers: ctx.breakers,
    rateLimiter: ctx.rateLimiter,
    subrequests: ctx.subrequests,
  };
}

/** A book by ISBN-13: KV, else the sources (stored for 30 days). Null when nobody knows it. */
export async function readBookByIsbn(ctx: ReaderContext, isbn13: string): Promise<CacheAnswer<Work | null>> {
  const key = cacheKeys.bookByIsbn(isbn13);
  const cached = await ctx.cache.get<Work>(key);
  if (cached) return { value: cached, hit: true };
  const result = await fromSources(ctx, () => searchBooks({ isbn: isbn13 }, sourcesContext(ctx), 10));
  const work = result.works.find((w) => w.isbn13s.includes(isbn13)) ?? null;
  if (work) await ctx.cache.set(key, work, TTL_SECONDS.bookByIsbn);
  return { value: work, hit: false };
}

/**
 * Books by title (and author): the exact title+author key first; else every entry under the title's
 * prefix (the warmer keys a work by its first author, so a co-author finds it there). A miss asks the
 * sources and stores each result under its own title key for 24 hours.
 */
export async function searchBooksByTitle(
  ctx: ReaderContext,
  title: string,
  author: string | undefined,
): Promise<CacheAnswer<Work[]>> {
  const wantedAuthor = author ? authorKey(author) : null;
  const matches = (w: Work) =>
    normalizeTitle(w.title) === normalizeTitle(title) &&
    (wantedAuthor === null || w.authors.some((a) => authorKey(a) === wantedAuthor));
  if (author) {
    const exact = await ctx.cache.get<Work>(cacheKeys.bookByTitle(title, author));
    if (exact) return { value: [exact], hit: true };
  }
  const keys = await ctx.cache.list(cacheKeys.bookByTitlePrefix(title), 20);
  if (keys.length > 0) {
    const entries = await Promise.all(keys.map((k) => ctx.cache.get<Work>(k)));
    const found = entries.filter((w): w is Work => w !== null && matches(w));
    if (found.length > 0) return { value: found, hit: true };
  }
  const result = await fromSources(ctx, () => searchBooks({ title, author }, sourcesContext(ctx), 20));
  await Promise.all(
    result.works.map((w) =>
      ctx.cache.set(cacheKeys.bookByTitle(w.title, w.authors[0] ?? author ?? ""), w, TTL_SECONDS.bookByTitle),
    ),
  );
  // Exact title matches first; the sources' looser matches follow.
  const exact = result.works.filter(matches);
  const others = result.works.filter((w) => !matches(w));
  return { value: [...exact, ...others], hit: false };
}

/** An author's merged works: KV, else every page from the sources (stored for 24 hours). */
export async function readAuthorWorks(
  ctx: ReaderContext,
  author: string,
): Promise<CacheAnswer<AuthorWorksEntry>> {
  const key = cacheKeys.authorWorks(author);
  const cached = await ctx.cache.get<AuthorWorksEntry>(key);
  if (cached) return { value: cached, hit: true };
  const result = await fromSources(ctx, () => fetchAuthorWorks(author, sourcesContext(ctx)));
  const entry: AuthorWorksEntry = { author, works: result.works, updatedAt: new Date().toISOString() };
  if (result.works.length > 0) await ctx.cache.set(key, entry, TTL_SECONDS.authorWorks);
  return { value: entry, hit: false };
}

/** Removes an author's works list and processed marker, so the next upload warms them again. */
export async function invalidateAuthor(cache: Cache, author: string): Promise<string[]> {
  const keys = [cacheKeys.authorWorks(author), cacheKeys.processedMarker(author)];
  await Promise.all(keys.map((k) => cache.delete(k)));
  return keys;
}

/** Removes a book's ISBN entry and the title entry that points at the same record. */
export async function invalidateBook(
  cache: Cache,
  isbn13: string,
): Promise<{ keys: string[]; found: boolean }> {
  const key = cacheKeys.bookByIsbn(isbn13);
  const cached = await cache.get<Work>(key);
  const keys = [key];
  if (cached) keys.push(cacheKeys.bookByTitle(cached.title, cached.authors[0] ?? ""));
  await Promise.all(keys.map((k) => cache.delete(k)));
  return { keys, found: cached !== null };
}
