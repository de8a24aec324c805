/**
 * Every KV key and TTL Kindling uses. The warmer writes and the reader reads through these
 * functions only, so a warmed entry is always found by a read.
 */
import { authorKey, normalizeTitle } from "../ingest/normalize";

const DAY = 24 * 60 * 60;

export const TTL_SECONDS = {
  bookByIsbn: 30 * DAY,
  bookByTitle: 1 * DAY,
  authorWorks: 1 * DAY,
  processedMarker: 90 * DAY,
} as const;

/** KV keys are limited to 512 bytes; longer natural keys (and list prefixes) are hashed. */
export const KV_KEY_MAX_BYTES = 512;
const encoder = new TextEncoder();

export function fnv1a64(text: string): string {
  // Two 32-bit FNV-1a lanes with different offsets: collision odds are negligible for cache keys.
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ 0x9747b28c;
  for (const byte of encoder.encode(text)) {
    h1 = Math.imul(h1 ^ byte, 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ byte, 0x01000193 + 2) >>> 0;
  }
  return h1.toString(16).padStart(8, "0") + h2.toString(16).padStart(8, "0");
}

function boundedKey(prefix: string, natural: string): string {
  const key = prefix + natural;
  if (keyFits(key)) return key;
  return `${prefix}#${fnv1a64(natural)}`;
}

/** Whether KV accepts this key: non-empty and at most 512 bytes of UTF-8. */
export function keyFits(key: string): boolean {
  // A UTF-16 code unit is at most 3 bytes of UTF-8: short keys (nearly all) need no encoding, which every
  // KV write would otherwise pay for.
  if (key.length * 3 <= KV_KEY_MAX_BYTES) return key.length > 0;
  return encoder.encode(key).byteLength <= KV_KEY_MAX_BYTES;
}

/**
 * Each half of a title key is bounded on its own (hashed past 240 bytes), so the title half alone is a
 * listable prefix that always fits: `book:title:` (11) + 240 + `|` + 240 ≤ 512.
 */
const TITLE_KEY_PART_MAX_BYTES = 240;

function boundedPart(natural: string): string {
  if (encoder.encode(natural).byteLength <= TITLE_KEY_PART_MAX_BYTES) return natural;
  return `#${fnv1a64(natural)}`;
}

export const KEY_PREFIX = {
  bookByIsbn: "book:isbn:",
  bookByTitle: "book:title:",
  authorWorks: "author:works:",
  processedMarker: "warming:processed:",
} as const;

export const cacheKeys = {
  bookByIsbn: (isbn13: string) => boundedKey(KEY_PREFIX.bookByIsbn, isbn13),
  /** Title + primary author; the reader can list `bookByTitlePrefix` when it has no author. */
  bookByTitle: (title: string, author: string) =>
    `${KEY_PREFIX.bookByTitle}${boundedPart(normalizeTitle(title))}|${boundedPart(authorKey(author))}`,
  bookByTitlePrefix: (title: string) => `${KEY_PREFIX.bookByTitle}${boundedPart(normalizeTitle(title))}|`,
  authorWorks: (author: string) => boundedKey(KEY_PREFIX.authorWorks, authorKey(author)),
  processedMarker: (author: string) => boundedKey(KEY_PREFIX.processedMarker, authorKey(author)),
};
