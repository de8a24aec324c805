/**
 * Text normalisation shared by ingest (author dedupe), the warmer and the reader (cache keys).
 * Every function here is pure and deterministic across runtimes: no locale-dependent behaviour.
 */

/** Any run of Unicode whitespace: `\s` covers ASCII space/tab/newlines, NBSP, U+2000–U+200A, U+3000, U+FEFF. */
const WHITESPACE_RUN = /\s+/g;
/** Printable ASCII words separated by single spaces: already clean and NFC (the common case, a fast path). */
const CLEAN_ASCII = /^[\x21-\x7e]+(?: [\x21-\x7e]+)*$/;
/** Combining marks (accents after NFKD decomposition). */
const COMBINING_MARKS = /\p{M}+/gu;
/** Anything that is neither a letter nor a number. */
const NON_ALPHANUMERIC_RUN = /[^\p{L}\p{N}]+/gu;
/** A period directly followed by a letter: "a.a. milne" → "a. a. milne". */
const INITIAL_PERIOD = /\.(?=\p{L})/gu;

/**
 * The display spelling of an author: NFC, trimmed, every whitespace run (NBSP included) collapsed
 * to one ASCII space. Case and accents are kept: "Tom  Chivers" → "Tom Chivers".
 */
export function cleanAuthorName(raw: string): string {
  if (CLEAN_ASCII.test(raw)) return raw;
  return raw.normalize("NFC").replace(WHITESPACE_RUN, " ").trim();
}

/**
 * The identity of an author: `cleanAuthorName` then case-folded.
 *
 * Case folding uses `String.prototype.toLowerCase()`, which the ECMAScript spec defines as the
 * locale-independent Unicode default case mapping, so the key is the same in workerd, Node and any
 * browser regardless of the host locale (no Turkish dotless-i surprises). It is a lower-casing, not
 * full case folding: "ß" stays "ß". The result is re-normalised to NFC because lower-casing can
 * produce decomposed sequences (e.g. "İ" → "i̇").
 *
 * Accents are significant: "Mihály Csíkszentmihályi" and "Mihaly Csikszentmihalyi" are two keys.
 * Initials are spaced one way: a period followed by a letter gets a space, so "A.A. Milne", "A. A. Milne"
 * and "J.R.R. Tolkien" / "J. R. R. Tolkien" are one author each (Open Library spells them spaced).
 */
export function authorKey(name: string): string {
  const key = cleanAuthorName(name).toLowerCase().normalize("NFC");
  return key.includes(".") ? key.replace(INITIAL_PERIOD, ". ") : key;
}

/**
 * A title reduced for cache keys (the warmer and the reader both call this, so warmed titles hit):
 * NFKD → drop combining marks → lower-case → every run of characters that are neither letters nor
 * digits becomes one space → trim. Nothing else is removed (no subtitle or series stripping), so
 * "The Silk Roads: A New History" → "the silk roads a new history" and "Café" → "cafe".
 */
export function normalizeTitle(title: string): string {
  return title
    .normalize("NFKD")
    .replace(COMBINING_MARKS, "")
    .toLowerCase()
    .replace(NON_ALPHANUMERIC_RUN, " ")
    .trim();
}
