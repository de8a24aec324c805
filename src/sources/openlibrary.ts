import { z } from "zod";
import { toIsbn13 } from "../ingest/isbn";
import { cleanAuthorName } from "../ingest/normalize";
import { getJson, type UpstreamDeps } from "./http";
import { type BookQuery, type SourceWork, toBookQuery } from "./types";

/** One work in `/search.json`'s answer, trimmed to what is cached (the ISBN lookup extends it). */
export const docSchema = z.object({
  key: z.string(),
  title: z.string().default(""),
  author_name: z.array(z.string()).default([]),
  first_publish_year: z.number().int().nullish(),
  cover_i: z.number().int().nullish(),
  isbn: z.array(z.string()).default([]),
});

/** `/search.json` answers a list; some mirrors answer a single doc for an exact match. */
export const searchSchema = z.union([
  z.object({
    numFound: z.number().int().min(0),
    start: z.number().int().optional(),
    docs: z.array(docSchema),
  }),
  docSchema.transform((doc) => ({ numFound: 1, start: 0, docs: [doc] })),
]);

export interface SourceFetchResult {
  works: SourceWork[];
  requests: number;
  truncated: boolean;
  warnings: string[];
}

export interface OpenLibraryOptions {
  baseUrl: string;
  maxWorks: number;
  pageSize?: number;
}

const MAX_ISBNS_PER_WORK = 10;

/** Only what is cached of a work. */
export const OPEN_LIBRARY_AUTHOR_FIELDS = "key,title,author_name,first_publish_year,cover_i,isbn";

export function toSourceWork(doc: z.infer<typeof docSchema>): SourceWork {
  const isbn13s: string[] = [];
  for (const raw of doc.isbn) {
    const isbn = toIsbn13(raw);
    if (isbn && !isbn13s.includes(isbn)) isbn13s.push(isbn);
    if (isbn13s.length >= MAX_ISBNS_PER_WORK) break;
  }
  return {
    source: "openlibrary",
    title: doc.title.trim(),
    authors: doc.author_name.map(cleanAuthorName).filter((a) => a.length > 0),
    isbn13s,
    openLibraryKey: doc.key,
    googleBooksId: null,
    firstPublishYear: doc.first_publish_year ?? null,
    coverId: doc.cover_i ?? null,
  };
}

/**
 * Every page of `/search.json?author=NAME` (or `isbn=`, `title=`), by offset/limit against numFound,
 * up to `maxWorks`.
 */
export async function fetchOpenLibraryWorks(
  query: string | BookQuery,
  options: OpenLibraryOptions,
  deps: UpstreamDeps,
): Promise<SourceFetchResult> {
  const pageSize = Math.min(options.pageSize ?? 100, options.maxWorks);
  const works: SourceWork[] = [];
  const warnings: string[] = [];
  let requests = 0;
  let offset = 0;
  let numFound = Number.POSITIVE_INFINITY;
  while (offset < numFound && works.length < options.maxWorks) {
    const url = new URL("/search.json", options.baseUrl);
    const { author, title, isbn } = toBookQuery(query);
    if (author) url.searchParams.set("author", author);
    if (title) url.searchParams.set("title", title);
    if (isbn) url.searchParams.set("isbn", isbn);
    url.searchParams.set("fields", OPEN_LIBRARY_AUTHOR_FIELDS);
    url.searchParams.set("limit", String(pageSize));
    url.searchParams.set("offset", String(offset));
    const page = await getJson("openlibrary", url.toString(), searchSchema, deps);
    requests++;
    numFound = page.numFound;
    if (page.docs.length === 0) {
      if (offset < numFound) warnings.push(`openlibrary: empty page at offset ${offset} of ${numFound}`);
      break;
    }
    for (const doc of page.docs) works.push(toSourceWork(doc));
    offset += page.docs.length;
  }
  const truncated = works.length >= options.maxWorks && numFound > options.maxWorks;
  return { works: works.slice(0, options.maxWorks), requests, truncated, warnings };
}
