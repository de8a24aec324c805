/**
 * The bundled exports' books (export-books.ts) as catalogue works, so the stand-in knows the ISBNs readers
 * upload and ISBN coverage can be measured. Open Library "does not know" about 1 in 20 of them (by hash);
 * Google Books knows them all.
 */
import { type CatalogueWork, fnv1a, hashFraction, openLibraryAuthorKey } from "./catalogue.ts";
import { EXPORT_BOOKS } from "./export-books.ts";

/** Share of the exports' ISBNs Open Library's stand-in answers without a doc. */
export const OPEN_LIBRARY_UNKNOWN_SHARE = 0.05;

const byIsbn = new Map(EXPORT_BOOKS.map((b) => [b[0], b]));

/** The exports' ISBNs, for coverage measurements. */
export const EXPORT_ISBNS: readonly string[] = [...byIsbn.keys()];

/** A book of the bundled exports as a catalogue work (one edition: the ISBN a reader owns). */
export function exportBook(isbn13: string): CatalogueWork | undefined {
  const book = byIsbn.get(isbn13);
  if (!book) return undefined;
  const [isbn, title, authors] = book;
  return {
    key: `/works/OL${fnv1a(`export:${isbn}`) + 1}W`,
    title,
    authors: [...authors],
    authorKeys: authors.map(openLibraryAuthorKey),
    firstPublishYear: 1950 + (fnv1a(isbn) % 75),
    isbn13s: [isbn],
    isbn10s: [],
    editionCount: 1,
    coverId: (fnv1a(`cover:${isbn}`) % 14_000_000) + 1_000_000,
    language: ["eng"],
  };
}

/** Whether Open Library's stand-in answers this ISBN (Google's always does, for the exports' books). */
export function openLibraryKnowsIsbn(isbn13: string): boolean {
  return hashFraction(isbn13, "ol-unknown-isbn") >= OPEN_LIBRARY_UNKNOWN_SHARE;
}
