/**
 * Limits every work item meets before anything is written. The parser enforces them row by row, the
 * queue message schema repeats them, so an item that passed ingest can always become a message.
 */

/** Longest author name (UTF-16 units) that becomes a work item; longer cells are refused per row. */
export const MAX_AUTHOR_NAME_CHARS = 300;

/** An author key is the name case-folded; lower-casing can lengthen a string (e.g. "İ" → "i̇"). */
export const MAX_AUTHOR_KEY_CHARS = MAX_AUTHOR_NAME_CHARS * 3;

/** Longest CSV row (characters): a longer one is refused, so parsing holds at most this between chunks. */
export const MAX_ROW_CHARS = 1024 * 1024;

/** How many refused rows an upload's answer lists as examples (the count is always exact). */
export const MAX_REJECTION_EXAMPLES = 5;

/** Echoed input (header cells, values) is cut to this many characters in error bodies. */
export const MAX_ECHOED_CHARS = 100;

/** A name whose key would read as an ISBN item's key (`isbn:978…`): never an author. */
const ISBN_ITEM_LIKE = /^isbn:97[89]\d{10}$/i;

/** Whether a cleaned author name may become a work item. */
export function authorNameProblem(name: string): string | null {
  if (name.length > MAX_AUTHOR_NAME_CHARS)
    return `author name is ${name.length} characters long; the limit is ${MAX_AUTHOR_NAME_CHARS}`;
  if (ISBN_ITEM_LIKE.test(name)) return "author name reads as an ISBN item key";
  return null;
}

/** Cuts an echoed value so an error body stays small whatever the input. */
export function echo(value: string): string {
  return value.length <= MAX_ECHOED_CHARS ? value : `${value.slice(0, MAX_ECHOED_CHARS)}…`;
}
