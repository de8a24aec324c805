import { z } from "zod";
import { toIsbn13 } from "../ingest/isbn";
import { cleanAuthorName } from "../ingest/normalize";
import { getJson, type UpstreamDeps } from "./http";
import type { SourceFetchResult } from "./openlibrary";
import { type BookQuery, type SourceWork, toBookQuery } from "./types";

const volumeSchema = z.object({
  id: z.string(),
  volumeInfo: z.object({
    title: z.string().default(""),
    authors: z.array(z.string()).default([]),
    publishedDate: z.string().optional(),
    industryIdentifiers: z.array(z.object({ type: z.string(), identifier: z.string() })).default([]),
  }),
});

/** A volumes list, or a single volume (what `/volumes/{id}` answers). */
const volumesSchema = z.union([
  z.object({ totalItems: z.number().int().min(0), items: z.array(volumeSchema).optional() }),
  volumeSchema.transform((volume) => ({ totalItems: 1, items: [volume] })),
]);

export interface GoogleBooksOptions {
  baseUrl: string;
  maxWorks: number;
  apiKey?: string | undefined;
}

/** Google Books refuses maxResults above 40. */
export const GOOGLE_BOOKS_PAGE_MAX = 40;

function toSourceWork(volume: z.infer<typeof volumeSchema>): SourceWork {
  const isbn13s: string[] = [];
  for (const id of volume.volumeInfo.industryIdentifiers) {
    if (id.type !== "ISBN_13" && id.type !== "ISBN_10") continue;
    const isbn = toIsbn13(id.identifier);
    if (isbn && !isbn13s.includes(isbn)) isbn13s.push(isbn);
  }
  const year = volume.volumeInfo.publishedDate?.match(/^(\d{4})/)?.[1];
  return {
    source: "googlebooks",
    title: volume.volumeInfo.title.trim(),
    authors: volume.volumeInfo.authors.map(cleanAuthorName).filter((a) => a.length > 0),
    isbn13s,
    openLibraryKey: null,
    googleBooksId: volume.id,
    firstPublishYear: year ? Number(year) : null,
    coverId: null,
  };
}

/** Google Books' query language: `inauthor:"A"`, `intitle:"T"`, `isbn:X`, joined by `+` (a space). */
export function googleQuery(query: BookQuery): string {
  const terms: string[] = [];
  if (query.isbn) terms.push(`isbn:${query.isbn}`);
  if (query.title) terms.push(`intitle:"${query.title}"`);
  if (query.author) terms.push(`inauthor:"${query.author}"`);
  return terms.join(" ");
}

/** Every page of `volumes?q=inauthor:"NAME"` (or isbn/intitle), by startIndex against totalItems, up to `maxWorks`. */
export async function fetchGoogleBooksWorks(
  query: string | BookQuery,
  options: GoogleBooksOptions,
  deps: UpstreamDeps,
): Promise<SourceFetchResult> {
  const pageSize = Math.min(GOOGLE_BOOKS_PAGE_MAX, options.maxWorks);
  const works: SourceWork[] = [];
  const warnings: string[] = [];
  let requests = 0;
  let startIndex = 0;
  let totalItems = Number.POSITIVE_INFINITY;
  while (startIndex < totalItems && works.length < options.maxWorks) {
    const url = new URL("/books/v1/volumes", options.baseUrl);
    url.searchParams.set("q", googleQuery(toBookQuery(query)));
    url.searchParams.set("startIndex", String(startIndex));
    url.searchParams.set("maxResults", String(pageSize));
    if (options.apiKey) url.searchParams.set("key", options.apiKey);
    const page = await getJson("googlebooks", url.toString(), volumesSchema, deps);
    requests++;
    totalItems = page.totalItems;
    const items = page.items ?? [];
    if (items.length === 0) {
      if (startIndex < totalItems)
        warnings.push(`googlebooks: empty page at startIndex ${startIndex} of ${totalItems}`);
      break;
    }
    for (const item of items) works.push(toSourceWork(item));
    startIndex += items.length;
  }
  const truncated = works.length >= options.maxWorks && totalItems > options.maxWorks;
  return { works: works.slice(0, options.maxWorks), requests, truncated, warnings };
}
