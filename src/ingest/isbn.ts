/**
 * ISBN cleaning, validation and conversion.
 *
 * Vocabulary: a "bare" ISBN is what `cleanIsbn` returns: only the characters of the number, no
 * wrapping, hyphens or spaces, with a check character `X` in upper case. The `isValid*` and
 * conversion helpers take bare strings; `toIsbn13` and `parseIsbnStrict` take raw input.
 */

export type IsbnProblem = "empty" | "length" | "characters" | "check_digit" | "prefix";

export type StrictIsbn = { ok: true; isbn13: string } | { ok: false; reason: IsbnProblem };

/** An optional leading label, as in "ISBN 978-…", "ISBN-13: 978…", "isbn10:…". */
const ISBN_LABEL = /^ISBN(?:-?1[03])?:?/i;
/** Whitespace (NBSP included) and every Unicode dash/hyphen (U+2010–U+2015, U+2212, ASCII "-"). */
const SEPARATORS = /[\s\-\u2010-\u2015\u2212]+/gu;

/** Already bare: nothing to strip (the common case, checked first to skip the replacements). */
const BARE = /^[0-9X]+$/;
const ISBN10 = /^\d{9}[\dX]$/;
const ISBN13 = /^97[89]\d{10}$/;

/**
 * Strips Goodreads' `="…"` wrapping, an optional "ISBN"/"ISBN-13:" label, hyphens and spaces, and
 * upper-cases `x`. Returns the bare string (not validated), or null when nothing is left.
 */
export function cleanIsbn(raw: string | null | undefined): string | null {
  if (raw == null) return null;
  let text = raw.trim();
  // Goodreads writes ISBNs as Excel formulas: `="0141026162"` (and `=""` when there is none).
  if (text.length >= 3 && text.startsWith('="') && text.endsWith('"')) text = text.slice(2, -1).trim();
  if (!BARE.test(text)) text = text.replace(ISBN_LABEL, "").replace(SEPARATORS, "").toUpperCase();
  return text === "" ? null : text;
}

function isbn10CheckChar(first9: string): string {
  let sum = 0;
  for (let i = 0; i < 9; i++) sum += (10 - i) * (first9.charCodeAt(i) - 48);
  const check = (11 - (sum % 11)) % 11;
  return check === 10 ? "X" : String(check);
}

function isbn13CheckChar(first12: string): string {
  let sum = 0;
  for (let i = 0; i < 12; i++) sum += (i % 2 === 0 ? 1 : 3) * (first12.charCodeAt(i) - 48);
  return String((10 - (sum % 10)) % 10);
}

/** True for a bare 10-character ISBN (9 digits + digit or `X`) whose check character is right. */
export function isValidIsbn10(isbn: string): boolean {
  return ISBN10.test(isbn) && isbn10CheckChar(isbn.slice(0, 9)) === isbn[9];
}

/**
 * True for a bare 13-digit ISBN with the 978/979 "Bookland" prefix and a correct check digit.
 * Other EAN-13 barcodes (a valid check digit but no 978/979) are not ISBNs and are rejected.
 */
export function isValidIsbn13(isbn: string): boolean {
  return ISBN13.test(isbn) && isbn13CheckChar(isbn.slice(0, 12)) === isbn[12];
}

/** "0141026162" → "9780141026169" (978 + first nine digits + recomputed check digit); null if not a valid ISBN-10. */
export function isbn10To13(isbn10: string): string | null {
  if (!isValidIsbn10(isbn10)) return null;
  const first12 = `978${isbn10.slice(0, 9)}`;
  return first12 + isbn13CheckChar(first12);
}

/** "9780141026169" → "0141026162"; null unless a valid 978-prefixed ISBN-13 (979 numbers have no ISBN-10). */
export function isbn13To10(isbn13: string): string | null {
  if (!isValidIsbn13(isbn13) || !isbn13.startsWith("978")) return null;
  const first9 = isbn13.slice(3, 12);
  return first9 + isbn10CheckChar(first9);
}

/**
 * Explains why raw input is or is not an ISBN, for a precise 400. Checks, in order: empty after
 * cleaning → characters other than digits (and `X` as the last of ten) → length other than 10/13 →
 * a 13-digit number without the 978/979 prefix (`prefix`) → check digit.
 */
export function parseIsbnStrict(raw: string | null | undefined): StrictIsbn {
  const bare = cleanIsbn(raw);
  if (bare === null) return { ok: false, reason: "empty" };
  if (!/^\d+X?$/.test(bare) || (bare.endsWith("X") && bare.length !== 10)) {
    return { ok: false, reason: "characters" };
  }
  if (bare.length === 10) {
    const isbn13 = isbn10To13(bare);
    return isbn13 === null ? { ok: false, reason: "check_digit" } : { ok: true, isbn13 };
  }
  if (bare.length !== 13) return { ok: false, reason: "length" };
  if (!/^97[89]/.test(bare)) return { ok: false, reason: "prefix" };
  return isValidIsbn13(bare) ? { ok: true, isbn13: bare } : { ok: false, reason: "check_digit" };
}

/** Raw ISBN-10 or ISBN-13 (hyphens, spaces, `="…"` allowed) → valid ISBN-13, or null. */
export function toIsbn13(raw: string | null | undefined): string | null {
  const parsed = parseIsbnStrict(raw);
  return parsed.ok ? parsed.isbn13 : null;
}

/** Why an ISBN cell cannot be warmed: the strict reasons plus two shapes worth naming for the reader. */
export type UnusableIsbnReason = IsbnProblem | "scientific_notation" | "asin";

/** Excel turns a 13-digit number into `9.78053E+12`: the digits are lost, nothing can be recovered. */
const SCIENTIFIC = /^\d(?:[.,]\d+)?E\+?\d+$/i;
/** Amazon's ASIN (Kindle editions on StoryGraph and Goodreads): `B` + 9 letters or digits. */
const ASIN = /^B[0-9A-Z]{9}$/;

export type IsbnCell =
  | { kind: "empty" }
  | { kind: "isbn"; isbn13: string }
  | { kind: "unusable"; reason: UnusableIsbnReason };

/**
 * One cell of an ISBN column: empty (Goodreads' `=""` included), a usable ISBN-13, or a value that is not
 * one and why (an Excel-mangled number, an ASIN, a wrong length, a bad check digit, an EAN without 978/979).
 */
export function readIsbnCell(raw: string | null | undefined): IsbnCell {
  const bare = cleanIsbn(raw);
  if (bare === null) return { kind: "empty" };
  const parsed = parseIsbnStrict(bare);
  if (parsed.ok) return { kind: "isbn", isbn13: parsed.isbn13 };
  if (SCIENTIFIC.test(bare)) return { kind: "unusable", reason: "scientific_notation" };
  if (ASIN.test(bare)) return { kind: "unusable", reason: "asin" };
  return { kind: "unusable", reason: parsed.reason };
}

/**
 * An ISBN work item's task key (tasks.author_key holds both kinds): `isbn:` + ISBN-13. No author key can
 * take this shape: ingest and co-author discovery refuse a name that reads as one (`authorNameProblem`).
 */
export function isbnItemKey(isbn13: string): string {
  return `isbn:${isbn13}`;
}

const ISBN_ITEM_KEY = /^isbn:(97[89]\d{10})$/;

/** The ISBN-13 of an ISBN item's key, or null for an author's key. */
export function isbnOfItemKey(key: string): string | null {
  return ISBN_ITEM_KEY.exec(key)?.[1] ?? null;
}
