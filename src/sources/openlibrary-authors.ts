import { authorKey } from "../ingest/normalize";
import { getJson, type UpstreamDeps } from "./http";
import { OPEN_LIBRARY_AUTHOR_FIELDS, searchSchema, toSourceWork } from "./openlibrary";
import type { SourceWork } from "./types";

/** Authors per OR-combined request (internetarchive/openlibrary#10345 asks clients to group work). */
export const AUTHOR_GROUP_MAX = 10;
/**
 * A group's works are read in pages this big (Open Library's largest page, which the stand-in caps at too), at
 * most this many pages; more means the group is split. One page of 1,000 rather than two of 250: a group of up
 * to 1,000 works costs one request, and fewer groups are split (124 → 96 requests on the bundled export).
 */
export const GROUP_PAGE_SIZE = 1000;
export const GROUP_MAX_PAGES = 1;

/** `author:"A" OR author:"B" …`; a double quote inside a name would end its term, so it becomes a space. */
export function authorGroupQuery(names: readonly string[]): string {
  return names.map((name) => `author:"${name.replace(/"/g, " ").trim()}"`).join(" OR ");
}

/** Each requested author's works from a group's answer, or null when the group's works do not fit. */
export type GroupAnswer = { fits: true; byAuthor: Map<string, SourceWork[]> } | { fits: false };

/**
 * One OR-combined `search.json` query for several authors: paged while the whole answer fits in
 * GROUP_MAX_PAGES pages (otherwise `fits: false` after the first page, and the caller splits the group).
 * Each work is attributed to every requested author it names, by `authorKey` (the key the upload uses, so
 * "A.A. Milne" asked and "A. A. Milne" answered match), up to `maxWorks` per author, in Open Library's order.
 */
export async function fetchOpenLibraryAuthorGroup(
  names: readonly string[],
  options: { baseUrl: string; maxWorks: number },
  deps: UpstreamDeps,
): Promise<GroupAnswer> {
  const byKey = new Map(names.map((name) => [authorKey(name), name]));
  const byAuthor = new Map<string, SourceWork[]>(names.map((name) => [name, []]));
  let offset = 0;
  let numFound = Number.POSITIVE_INFINITY;
  for (let page = 0; offset < numFound; page++) {
    const url = new URL("/search.json", options.baseUrl);
    url.searchParams.set("q", authorGroupQuery(names));
    url.searchParams.set("fields", OPEN_LIBRARY_AUTHOR_FIELDS);
    url.searchParams.set("limit", String(GROUP_PAGE_SIZE));
    url.searchParams.set("offset", String(offset));
    const answer = await getJson("openlibrary", url.toString(), searchSchema, deps);
    numFound = answer.numFound;
    if (numFound > GROUP_PAGE_SIZE * GROUP_MAX_PAGES) return { fits: false };
    if (answer.docs.length === 0) break;
    for (const doc of answer.docs) {
      const work = toSourceWork(doc);
      for (const name of new Set(work.authors.map((a) => byKey.get(authorKey(a))))) {
        const list = name === undefined ? undefined : byAuthor.get(name);
        if (list && list.length < options.maxWorks) list.push(work);
      }
    }
    offset += answer.docs.length;
    if (page + 1 >= GROUP_MAX_PAGES) break;
  }
  return { fits: true, byAuthor };
}
