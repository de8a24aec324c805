import { classifyFailure, QuotaExhaustedError, UpstreamError } from "../errors";
import { fetchGoogleBooksWorks } from "./googlebooks";
import { enabledSources, type SourceReport, type SourcesContext, upstreamDeps } from "./index";
import { mergeWorks } from "./merge";
import { fetchOpenLibraryIsbns } from "./openlibrary-isbns";
import type { SourceName, SourceWork, Work } from "./types";

/** What looking one ISBN up came to: the edition (or null when no source knows it), or why not. */
export type IsbnResult =
  | { ok: true; work: Work | null; reports: SourceReport[]; requests: number }
  | { ok: false; error: unknown };

interface SourceAnswer {
  found: Map<string, SourceWork>;
  /** Per ISBN asked: the request(s) it cost this source (a group's requests are counted on its first ISBN). */
  requests: Map<string, number>;
  error?: unknown;
}

/**
 * Looks a group of ISBN-13s up: Open Library once for the whole group (`q=isbn:A OR isbn:B …`), then Google
 * Books one ISBN at a time, for the ISBNs Open Library answered without (complement, the default) or for all
 * of them (GOOGLE_BOOKS_ROLE=always). An ISBN whose Open Library request failed is not sent to Google: it is
 * retried (or deferred) whole, so a blip does not spend the daily quota. The caller keeps groups ≤ 25.
 */
export async function lookupIsbns(
  isbns: readonly string[],
  ctx: SourcesContext,
): Promise<Map<string, IsbnResult>> {
  const sources = enabledSources(ctx.config);
  const ol = sources.includes("openlibrary") ? await askOpenLibrary(isbns, ctx) : null;
  const forGoogle = !sources.includes("googlebooks")
    ? []
    : isbns.filter((isbn) =>
        ol === null || skippedForQuota(ol.error)
          ? true
          : ol.error === undefined && (ctx.config.GOOGLE_BOOKS_ROLE === "always" || !ol.found.has(isbn)),
      );
  const gb = forGoogle.length > 0 ? await askGoogle(forGoogle, ctx) : null;
  const results = new Map<string, IsbnResult>();
  for (const isbn of isbns) results.set(isbn, resultFor(isbn, ol, gb, forGoogle.includes(isbn)));
  return results;
}

async function askOpenLibrary(isbns: readonly string[], ctx: SourcesContext): Promise<SourceAnswer> {
  const counter = { requests: 0 };
  const requests = new Map<string, number>();
  try {
    const { found } = await fetchOpenLibraryIsbns(
      isbns,
      ctx.config.OPENLIBRARY_BASE_URL,
      upstreamDeps(ctx, counter),
    );
    requests.set(isbns[0] as string, counter.requests);
    return { found, requests };
  } catch (error) {
    requests.set(isbns[0] as string, counter.requests);
    await honourSlowDown("openlibrary", error, ctx);
    return { found: new Map(), requests, error };
  }
}

/** Per ISBN: Google's search has no OR over ISBNs, so each costs one request (and one slot). */
async function askGoogle(isbns: readonly string[], ctx: SourcesContext): Promise<Map<string, SourceAnswer>> {
  const answers = new Map<string, SourceAnswer>();
  await Promise.all(
    isbns.map(async (isbn) => {
      const counter = { requests: 0 };
      try {
        const page = await fetchGoogleBooksWorks(
          { isbn },
          { baseUrl: ctx.config.GOOGLE_BOOKS_BASE_URL, maxWorks: 1, apiKey: ctx.config.GOOGLE_BOOKS_API_KEY },
          upstreamDeps(ctx, counter),
        );
        const work = page.works.find((w) => w.isbn13s.includes(isbn));
        const found = new Map(
          work ? [[isbn, { ...work, isbn13s: [isbn, ...work.isbn13s.filter((i) => i !== isbn)] }]] : [],
        );
        answers.set(isbn, { found, requests: new Map([[isbn, counter.requests]]) });
      } catch (error) {
        await honourSlowDown("googlebooks", error, ctx);
        answers.set(isbn, { found: new Map(), requests: new Map([[isbn, counter.requests]]), error });
      }
    }),
  );
  return answers;
}

/** A 429/503 with Retry-After holds every caller of that provider off, as for authors; a spent quota, for the day. */
export async function honourSlowDown(source: SourceName, error: unknown, ctx: SourcesContext): Promise<void> {
  // The provider's daily quota is spent: every caller skips it until the quota day resets.
  if (error instanceof QuotaExhaustedError && error.byProvider) {
    await ctx.rateLimiter?.exhaust?.(source);
    return;
  }
  if (!(error instanceof UpstreamError) || !error.retryAfterSeconds || !ctx.rateLimiter) return;
  if (error.upstreamStatus === 429 || error.upstreamStatus === 503)
    await ctx.rateLimiter.pause(source, error.retryAfterSeconds);
}

function report(source: SourceName, isbn: string, answer: SourceAnswer): SourceReport {
  const works = answer.found.has(isbn) ? 1 : 0;
  return reportOf(source, works, answer.requests.get(isbn) ?? 0, false, answer.error);
}

/** A source's report for one item: ok, or the classified error it gave. */
export function reportOf(
  source: SourceName,
  works: number,
  requests: number,
  truncated: boolean,
  error: unknown,
): SourceReport {
  const base = { source, works, requests, truncated };
  if (error === undefined) return { ...base, ok: true };
  const failure = classifyFailure(error);
  return { ...base, ok: false, error: { code: failure.code, kind: failure.kind, message: failure.message } };
}

function resultFor(
  isbn: string,
  ol: SourceAnswer | null,
  gb: Map<string, SourceAnswer> | null,
  askedGoogle: boolean,
): IsbnResult {
  const answers: [SourceName, SourceAnswer][] = [];
  if (ol) answers.push(["openlibrary", ol]);
  const google = askedGoogle ? gb?.get(isbn) : undefined;
  if (google) answers.push(["googlebooks", google]);
  const found = answers.flatMap(([, a]) => {
    const work = a.found.get(isbn);
    return work ? [work] : [];
  });
  // Not found and some source could not say: the item goes round again rather than finish empty. A source
  // skipped for its spent quota is not a failure: the item finishes with the sources left.
  const failure = answers.find(([, a]) => a.error !== undefined && !skippedForQuota(a.error))?.[1].error;
  if (found.length === 0 && failure !== undefined) return { ok: false, error: failure };
  const reports = answers.map(([source, a]) => report(source, isbn, a));
  const requests = reports.reduce((n, r) => n + r.requests, 0);
  if (found.length === 0) return { ok: true, work: null, reports, requests };
  const merged = mergeWorks(found)[0] as Work;
  // The edition's own ISBN is the record's identity and primary ISBN, whatever order the sources used.
  const isbn13s = [isbn, ...merged.isbn13s.filter((i) => i !== isbn)];
  return { ok: true, work: { ...merged, id: `isbn:${isbn}`, isbn13: isbn, isbn13s }, reports, requests };
}

/** A source left out because its daily quota is spent: recorded per source, never retried for the item. */
export function skippedForQuota(error: unknown): boolean {
  return error instanceof QuotaExhaustedError;
}
