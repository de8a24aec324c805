import { fetchGoogleBooksWorks } from "./googlebooks";
import {
  type AuthorWorksResult,
  enabledSources,
  fetchAuthorWorks,
  type SourceReport,
  type SourcesContext,
  upstreamDeps,
} from "./index";
import { honourSlowDown, reportOf, skippedForQuota } from "./isbn-lookup";
import { mergeWorks } from "./merge";
import { fetchOpenLibraryWorks } from "./openlibrary";
import { fetchOpenLibraryAuthorGroup } from "./openlibrary-authors";
import type { SourceName, SourceWork } from "./types";

/** One author's result from a grouped fetch: its works and reports, or why it has none. */
export type AuthorResult = { ok: true; result: AuthorWorksResult } | { ok: false; error: unknown };

interface SourceAnswer {
  works: SourceWork[];
  requests: number;
  truncated: boolean;
  error?: unknown;
}

/**
 * Several authors' works with few requests: Open Library once for the group (OR-combined `author:` terms),
 * a group whose works do not fit split in halves down to single authors (each its own paged query), then
 * Google Books per author, for those Open Library found nothing for (complement) or all (always). A failed
 * group request fails each of its authors (retried; the next delivery uses smaller groups).
 */
export async function fetchAuthorsGrouped(
  names: readonly string[],
  ctx: SourcesContext,
): Promise<Map<string, AuthorResult>> {
  const sources = enabledSources(ctx.config);
  const results = new Map<string, AuthorResult>();
  if (!sources.includes("openlibrary")) {
    await Promise.all(
      names.map(async (name) => {
        try {
          results.set(name, { ok: true, result: await fetchAuthorWorks(name, ctx) });
        } catch (error) {
          results.set(name, { ok: false, error });
        }
      }),
    );
    return results;
  }
  const ol = await openLibraryForGroup(names, ctx);
  const forGoogle = sources.includes("googlebooks")
    ? names.filter((name) => {
        const answer = ol.get(name);
        if (answer?.error !== undefined && !skippedForQuota(answer.error)) return false;
        return ctx.config.GOOGLE_BOOKS_ROLE === "always" || (answer?.works.length ?? 0) === 0;
      })
    : [];
  const gb = new Map<string, SourceAnswer>();
  await Promise.all(forGoogle.map(async (name) => gb.set(name, await askGoogle(name, ctx))));
  for (const name of names) results.set(name, combine(ol.get(name), gb.get(name)));
  return results;
}

async function openLibraryForGroup(
  names: readonly string[],
  ctx: SourcesContext,
): Promise<Map<string, SourceAnswer>> {
  const counter = { requests: 0 };
  const deps = upstreamDeps(ctx, counter);
  const maxWorks = ctx.config.MAX_WORKS_PER_AUTHOR;
  const baseUrl = ctx.config.OPENLIBRARY_BASE_URL;
  const answers = new Map<string, SourceAnswer>();
  const charge = () => {
    // The group's requests are counted once, on its first author: the sum over authors stays true.
    const first = answers.get(names[0] as string);
    if (first) first.requests += counter.requests;
    counter.requests = 0;
  };
  try {
    if (names.length === 1) {
      const page = await fetchOpenLibraryWorks(names[0] as string, { baseUrl, maxWorks }, deps);
      answers.set(names[0] as string, { works: page.works, requests: 0, truncated: page.truncated });
      charge();
      return answers;
    }
    const group = await fetchOpenLibraryAuthorGroup(names, { baseUrl, maxWorks }, deps);
    if (group.fits) {
      for (const name of names)
        answers.set(name, { works: group.byAuthor.get(name) ?? [], requests: 0, truncated: false });
      charge();
      return answers;
    }
  } catch (error) {
    await honourSlowDown("openlibrary", error, ctx);
    for (const name of names) answers.set(name, { works: [], requests: 0, truncated: false, error });
    charge();
    return answers;
  }
  // Too many works for one query: halves, each asked on its own (a single author pages through its own).
  const spent = counter.requests;
  const half = Math.ceil(names.length / 2);
  const parts = await Promise.all([
    openLibraryForGroup(names.slice(0, half), ctx),
    openLibraryForGroup(names.slice(half), ctx),
  ]);
  for (const part of parts) for (const [name, answer] of part) answers.set(name, answer);
  const first = answers.get(names[0] as string);
  if (first) first.requests += spent;
  return answers;
}

async function askGoogle(name: string, ctx: SourcesContext): Promise<SourceAnswer> {
  const counter = { requests: 0 };
  try {
    const page = await fetchGoogleBooksWorks(
      name,
      {
        baseUrl: ctx.config.GOOGLE_BOOKS_BASE_URL,
        maxWorks: ctx.config.MAX_WORKS_PER_AUTHOR,
        apiKey: ctx.config.GOOGLE_BOOKS_API_KEY,
      },
      upstreamDeps(ctx, counter),
    );
    return { works: page.works, requests: counter.requests, truncated: page.truncated };
  } catch (error) {
    await honourSlowDown("googlebooks", error, ctx);
    return { works: [], requests: counter.requests, truncated: false, error };
  }
}

/** An author's answers as one result: works from every source that answered, or the failure. */
function combine(ol: SourceAnswer | undefined, gb: SourceAnswer | undefined): AuthorResult {
  const answers: [SourceName, SourceAnswer][] = [];
  if (ol) answers.push(["openlibrary", ol]);
  if (gb) answers.push(["googlebooks", gb]);
  const works = answers.flatMap(([, a]) => a.works);
  const failure = answers.find(([, a]) => a.error !== undefined && !skippedForQuota(a.error))?.[1].error;
  // Nothing found while a source could not answer: retried rather than recorded as an author with no works.
  // A source skipped for its spent daily quota is not a failure: the author finishes with the sources left.
  if (works.length === 0 && failure !== undefined) return { ok: false, error: failure };
  const reports: SourceReport[] = answers.map(([source, a]) =>
    reportOf(source, a.works.length, a.requests, a.truncated, a.error),
  );
  const requests = reports.reduce((n, r) => n + r.requests, 0);
  return { ok: true, result: { works: mergeWorks(works), reports, warnings: [], requests } };
}
