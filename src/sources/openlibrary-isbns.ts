import { z } from "zod";
import { toIsbn13 } from "../ingest/isbn";
import { cleanAuthorName } from "../ingest/normalize";
import { getJson, type UpstreamDeps } from "./http";
import { docSchema } from "./openlibrary";
import type { SourceWork } from "./types";

/** Open Library's maintainers ask for about 25 ISBNs per request (internetarchive/openlibrary#11406). */
export const ISBN_GROUP_MAX = 25;

const editionSchema = z.object({
  key: z.string().optional(),
  title: z.string().optional(),
  isbn: z.array(z.string()).default([]),
  cover_i: z.number().int().nullish(),
});

const isbnDocSchema = docSchema.extend({
  /** The editions that matched the query (Open Library answers them under the work). */
  editions: z.object({ docs: z.array(editionSchema).default([]) }).optional(),
});

const isbnSearchSchema = z.object({ numFound: z.number().int().min(0), docs: z.array(isbnDocSchema) });

/** Only what an ISBN item caches: the work, its ISBNs (to attribute it) and the matching editions. */
export const ISBN_SEARCH_FIELDS =
  "key,title,author_name,first_publish_year,cover_i,isbn,editions,editions.key,editions.title,editions.isbn,editions.cover_i";

const PAGE_SIZE = 100;
/** A group of 25 ISBNs names at most 25 works; a couple of pages covers odd duplicates. */
const MAX_PAGES = 3;
/** ISBNs kept per work besides the edition's own. */
const MAX_OTHER_ISBNS = 9;

/** `isbn:A OR isbn:B …`: one query for the whole group. */
export function isbnGroupQuery(isbns: readonly string[]): string {
  return isbns.map((isbn) => `isbn:${isbn}`).join(" OR ");
}

/**
 * One `search.json?q=isbn:A OR isbn:B …` (paged if Open Library finds more docs than a page) for up to 25
 * ISBN-13s. Each returned work is attributed to every requested ISBN it lists, as that edition: the edition's
 * ISBN first, its own title and cover where Open Library gives them, the work's data for the rest.
 * ISBNs missing from the map are ones Open Library does not know.
 */
export async function fetchOpenLibraryIsbns(
  isbns: readonly string[],
  baseUrl: string,
  deps: UpstreamDeps,
): Promise<{ found: Map<string, SourceWork>; requests: number }> {
  const wanted = new Set(isbns);
  const found = new Map<string, SourceWork>();
  let requests = 0;
  let offset = 0;
  let numFound = Number.POSITIVE_INFINITY;
  while (offset < numFound && requests < MAX_PAGES && found.size < wanted.size) {
    const url = new URL("/search.json", baseUrl);
    url.searchParams.set("q", isbnGroupQuery(isbns));
    url.searchParams.set("fields", ISBN_SEARCH_FIELDS);
    url.searchParams.set("limit", String(PAGE_SIZE));
    url.searchParams.set("offset", String(offset));
    const page = await getJson("openlibrary", url.toString(), isbnSearchSchema, deps);
    requests++;
    numFound = page.numFound;
    if (page.docs.length === 0) break;
    for (const doc of page.docs) attribute(doc, wanted, found);
    offset += page.docs.length;
  }
  return { found, requests };
}

type IsbnDoc = z.infer<typeof isbnDocSchema>;

function attribute(doc: IsbnDoc, wanted: Set<string>, found: Map<string, SourceWork>): void {
  const workIsbns = [...new Set(doc.isbn.map(toIsbn13).filter((i): i is string => i !== null))];
  const editions = doc.editions?.docs ?? [];
  for (const isbn of workIsbns) {
    if (!wanted.has(isbn) || found.has(isbn)) continue;
    const edition = editions.find((e) => e.isbn.some((raw) => toIsbn13(raw) === isbn));
    found.set(isbn, {
      source: "openlibrary",
      title: (edition?.title ?? doc.title).trim(),
      authors: doc.author_name.map(cleanAuthorName).filter((a) => a.length > 0),
      isbn13s: [isbn, ...workIsbns.filter((i) => i !== isbn).slice(0, MAX_OTHER_ISBNS)],
      openLibraryKey: doc.key,
      googleBooksId: null,
      firstPublishYear: doc.first_publish_year ?? null,
      coverId: edition?.cover_i ?? doc.cover_i ?? null,
    });
  }
}
