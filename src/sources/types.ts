/** What the sources return and what the cache and D1 hold. */

export type SourceName = "openlibrary" | "googlebooks";

/** One work as one source reports it, before merging. */
export interface SourceWork {
  source: SourceName;
  title: string;
  /** Display names, primary author first. */
  authors: string[];
  /** Valid ISBN-13s (ISBN-10s converted), most relevant first. */
  isbn13s: string[];
  openLibraryKey: string | null;
  googleBooksId: string | null;
  firstPublishYear: number | null;
  coverId: number | null;
}

/** One work after merging every source's view of it: the only shape written to KV and D1. */
export interface Work {
  /** Identity: `isbn:<isbn13>`, else `ol:<work key>`, else `title:<normalised title>|<first author key>`. */
  id: string;
  title: string;
  authors: string[];
  isbn13: string | null;
  isbn13s: string[];
  openLibraryKey: string | null;
  googleBooksId: string | null;
  firstPublishYear: number | null;
  coverId: number | null;
  sources: SourceName[];
}

/** What a source can be asked for: an author's works (paged), or books by ISBN or title. */
export interface BookQuery {
  author?: string | undefined;
  title?: string | undefined;
  isbn?: string | undefined;
}

export function toBookQuery(query: string | BookQuery): BookQuery {
  return typeof query === "string" ? { author: query } : query;
}
