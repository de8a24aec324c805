/**
 * A pure, deterministic, total book catalogue for the fake upstream.
 *
 * Every author name maps to the same works (titles, keys, ISBNs) in every process: the generator is a
 * mulberry32 PRNG seeded from an FNV-1a hash of `authorKey(name)`. Web-standard APIs only — this module is
 * also imported inside the workerd test runtime.
 *
 * Shape of the catalogue:
 * - most authors have 3–25 works; about 1 in 12 has 60–150 (to exercise paging);
 * - about 1 in 5 authors has 1–2 works co-written with a member of `CO_AUTHOR_POOL` (discovery fan-out);
 *   pool members obey the same rule, so fan-out continues but is bounded by the pool;
 * - about 10% of works have no ISBN; the rest have 1–3 editions, each with an ISBN-13 (978 prefix) and
 *   its ISBN-10 form, all with valid check digits;
 * - authors whose key starts with "zz-unknown" have no works;
 * - "J. K. Rowling" gets the works of the recorded Open Library fixture (see recorded.ts).
 */
import { RECORDED_AUTHOR_KEY, RECORDED_AUTHOR_WORKS } from "./recorded.ts";

export interface CatalogueWork {
  /** "/works/OL<n>W" */
  key: string;
  title: string;
  /** Display names, primary (queried) author first. */
  authors: string[];
  /** "OL<n>A", parallel to `authors`. */
  authorKeys: string[];
  firstPublishYear: number;
  /** Valid ISBN-13s (978 prefix). Empty for works without an ISBN. */
  isbn13s: string[];
  /** Valid ISBN-10s of the same editions, parallel to `isbn13s`. */
  isbn10s: string[];
  editionCount: number;
  coverId: number | null;
  language: string[];
}

// ---------------------------------------------------------------------------------------------------------
// Hashing and PRNG
// ---------------------------------------------------------------------------------------------------------

const encoder = new TextEncoder();

/** 32-bit FNV-1a over the UTF-8 bytes of `text`. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of encoder.encode(text)) {
    h ^= byte;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** mulberry32: a tiny, fast, well-distributed 32-bit PRNG returning floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** murmur3's 32-bit finaliser: FNV-1a alone barely moves the top bits when only the last byte differs. */
function fmix32(h: number): number {
  let x = h >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** A deterministic, well-mixed fraction in [0, 1) for `key` under `salt` (independent per salt). */
export function hashFraction(key: string, salt: string): number {
  return fmix32(fnv1a(`${salt}\u0000${key}`)) / 4294967296;
}

function intBetween(rng: () => number, min: number, max: number): number {
  return min + Math.floor(rng() * (max - min + 1));
}

function pick<T>(rng: () => number, items: readonly T[]): T {
  const item = items[Math.floor(rng() * items.length)];
  if (item === undefined) throw new Error("pick from empty list");
  return item;
}

// ---------------------------------------------------------------------------------------------------------
// Names and ISBNs
// ---------------------------------------------------------------------------------------------------------

/** NFC-normalise, trim, collapse whitespace runs, lowercase: "Tom  Chivers" → "tom chivers". */
export function authorKey(name: string): string {
  return name.normalize("NFC").trim().replace(/\s+/g, " ").toLowerCase();
}

/** Check digit of a 978/979 ISBN-13 given its first 12 digits. */
export function isbn13CheckDigit(first12: string): string {
  if (!/^\d{12}$/.test(first12)) throw new Error(`isbn13CheckDigit needs 12 digits, got "${first12}"`);
  let sum = 0;
  for (let i = 0; i < 12; i++) sum += Number(first12[i]) * (i % 2 === 0 ? 1 : 3);
  return String((10 - (sum % 10)) % 10);
}

/** Check digit ("0"–"9" or "X") of an ISBN-10 given its first 9 digits. */
export function isbn10CheckDigit(first9: string): string {
  if (!/^\d{9}$/.test(first9)) throw new Error(`isbn10CheckDigit needs 9 digits, got "${first9}"`);
  let sum = 0;
  for (let i = 0; i < 9; i++) sum += Number(first9[i]) * (10 - i);
  const check = (11 - (sum % 11)) % 11;
  return check === 10 ? "X" : String(check);
}

/** A valid ISBN-13 / ISBN-10 pair for the same book, from 9 random body digits. */
function isbnPair(rng: () => number): { isbn13: string; isbn10: string } {
  // All nine body digits random (any registration group) to keep cross-author collisions rare.
  let body = "";
  while (body.length < 9) body += String(Math.floor(rng() * 10));
  return {
    isbn13: `978${body}${isbn13CheckDigit(`978${body}`)}`,
    isbn10: `${body}${isbn10CheckDigit(body)}`,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Co-author pool
// ---------------------------------------------------------------------------------------------------------

const FIRST_NAMES: readonly string[] = (
  "Mara Tobias Ines Felix Harriet Omar Priya Declan Wen Isolde Kofi Lena Rafael Saoirse Tariq " +
  "Yuki Elodie Bram Nadia Caspar Ruth Anselm Greta Idris Julia Matthias Noor Orla Pavel Quentin " +
  "Rosa Silas Thea Ugo Vera Wilhelmina Xavier Yara Zeno Adaeze Bastian Cecily Dmitri Esme " +
  "Florian"
).split(" ");

const SURNAMES: readonly string[] = (
  "Ellison Marsh Okafor Lindqvist Harrow Castellano Whitlock Brennan Achterberg Quill " +
  "Fairweather Nakamura Oyelaran Petrakis Rasmussen Sandoval Thorne Underhill Vasquez Wrenfield " +
  "Yilmaz Zielinski Ashdown Blackwood Carrow Delacroix Everly Fontaine Gallagher Holloway Iwu " +
  "Jansen Kowalczyk Lachance Mbeki Novak Ostrowski Pemberton Ravel Stroud Tanaka Varga Winslow " +
  "Abernathy Bellweather"
).split(" ");

/** Accented and hyphenated names, so consumers must handle Unicode normalisation in author keys. */
const ACCENTED_NAMES = [
  "Zoë Brontë-Kovács",
  "José Núñez",
  "Søren Åberg",
  "Anaïs Lefèvre",
  "Björn Østergaard",
  "Małgorzata Wiśniewska",
  "Çağrı Öztürk",
  "Renée Dubois-Marchand",
  "Jiří Dvořák",
  "Siobhán Ní Bhriain",
] as const;

function buildCoAuthorPool(size: number): string[] {
  const rng = mulberry32(0xc0a07);
  const names = new Set<string>(ACCENTED_NAMES);
  while (names.size < size) names.add(`${pick(rng, FIRST_NAMES)} ${pick(rng, SURNAMES)}`);
  return [...names];
}

/** Shared pool of 300 deterministic co-author names (a few with accents). */
export const CO_AUTHOR_POOL: readonly string[] = buildCoAuthorPool(300);

// ---------------------------------------------------------------------------------------------------------
// Titles
// ---------------------------------------------------------------------------------------------------------

const ADJECTIVES: readonly string[] = (
  "Silent Hidden Broken Distant Golden Quiet Burning Forgotten Crimson Hollow Wandering " +
  "Northern Restless Secret Shattered Winter Glass Iron Lonely Last Drowned Painted Salt Bitter " +
  "Little Wild Paper Midnight Sunken Borrowed"
).split(" ");

const NOUNS: readonly string[] = (
  "Harbour Garden Orchard Lighthouse River Archive Kingdom Map Clockmaker Island Compass " +
  "Library Cartographer Meadow Bridge Lantern Tide Forest Observatory Ferryman Mirror Winter " +
  "Sparrow Citadel Ledger Valley Atlas Furnace Chapel Reckoning"
).split(" ");

const PLACES: readonly string[] = (
  "Venice,Lisbon,the North,Marrakesh,the Fens,Samarkand,the Marsh,Kyoto,Aleppo,the Moor," +
  "Istanbul,the Highlands,Tangier,the Coast,Prague"
).split(",");

function makeTitle(rng: () => number): string {
  const adj = pick(rng, ADJECTIVES);
  const noun = pick(rng, NOUNS);
  const noun2 = pick(rng, NOUNS);
  switch (Math.floor(rng() * 7)) {
    case 0:
      return `${adj} ${noun}`;
    case 1:
      return `The ${noun} of ${pick(rng, PLACES)}`;
    case 2:
      return `A ${noun} in ${pick(rng, PLACES)}`;
    case 3:
      return `The ${noun}'s ${noun2}`;
    case 4:
      return `${noun} and ${noun2}`;
    case 5:
      return `The ${adj} ${noun}: A History of ${pick(rng, PLACES)}`;
    default:
      return `The ${adj} ${noun}`;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Works
// ---------------------------------------------------------------------------------------------------------

/** `authorKey` of the recorded author, whose works come from the Open Library fixture. */
const RECORDED_KEY = "j. k. rowling";

const LANGUAGES: readonly (readonly string[])[] = [
  ["eng"],
  ["eng"],
  ["eng"],
  ["eng"],
  ["eng", "fre"],
  ["eng", "ger"],
  ["eng", "spa"],
];

/** Open Library author key for a (non-recorded) author: "OL<n>A", derived from the author-key hash. */
export function openLibraryAuthorKey(name: string): string {
  const key = authorKey(name);
  if (key === RECORDED_KEY) return RECORDED_AUTHOR_KEY;
  return `OL${fnv1a(key) + 1}A`;
}

/** Whether the author (by key) has any co-written works: ~1 in 5, decided by hash. */
export function hasCoAuthors(name: string): boolean {
  return hashFraction(authorKey(name), "coauthor") < 0.2;
}

function editions(rng: () => number): { isbn13s: string[]; isbn10s: string[] } {
  const isbn13s: string[] = [];
  const isbn10s: string[] = [];
  if (rng() < 0.1) return { isbn13s, isbn10s };
  const count = rng() < 0.6 ? 1 : rng() < 0.75 ? 2 : 3;
  for (let i = 0; i < count; i++) {
    const { isbn13, isbn10 } = isbnPair(rng);
    isbn13s.push(isbn13);
    isbn10s.push(isbn10);
  }
  return { isbn13s, isbn10s };
}

function recordedWorks(name: string): CatalogueWork[] {
  const rng = mulberry32(fnv1a(RECORDED_KEY));
  return RECORDED_AUTHOR_WORKS.map((w) => {
    const { isbn13s, isbn10s } = editions(rng);
    return {
      key: w.key,
      title: w.title,
      authors: [name],
      authorKeys: [RECORDED_AUTHOR_KEY],
      firstPublishYear: intBetween(rng, 1997, 2023),
      isbn13s,
      isbn10s,
      editionCount: Math.max(1, isbn13s.length, intBetween(rng, 1, 60)),
      coverId: w.coverId,
      language: [...pick(rng, LANGUAGES)],
    };
  });
}

function generatedWorks(name: string, key: string): CatalogueWork[] {
  const hash = fnv1a(key);
  const rng = mulberry32(hash);
  const big = hashFraction(key, "prolific") < 1 / 12;
  const count = big ? intBetween(rng, 60, 150) : intBetween(rng, 3, 25);
  const primaryKey = openLibraryAuthorKey(name);

  // Which works (if any) are co-written, and with whom. Never with oneself.
  const coAuthored = new Map<number, string>();
  if (hasCoAuthors(name)) {
    const n = rng() < 0.6 ? 1 : 2;
    while (coAuthored.size < Math.min(n, count)) {
      const coAuthor = pick(rng, CO_AUTHOR_POOL);
      if (authorKey(coAuthor) === key) continue;
      coAuthored.set(Math.floor(rng() * count), coAuthor);
    }
  }

  // Work numbers: unique per (author hash, index), so distinct authors never share a work key.
  const keyBase = (hash + 1) * 1000;
  const seenTitles = new Set<string>();
  const works: CatalogueWork[] = [];
  for (let i = 0; i < count; i++) {
    let title = makeTitle(rng);
    for (let attempt = 0; seenTitles.has(title) && attempt < 20; attempt++) title = makeTitle(rng);
    if (seenTitles.has(title)) title = `${title} (Volume ${i + 1})`;
    seenTitles.add(title);

    const { isbn13s, isbn10s } = editions(rng);
    const coAuthor = coAuthored.get(i);
    works.push({
      key: `/works/OL${keyBase + i}W`,
      title,
      authors: coAuthor === undefined ? [name] : [name, coAuthor],
      authorKeys: coAuthor === undefined ? [primaryKey] : [primaryKey, openLibraryAuthorKey(coAuthor)],
      firstPublishYear: intBetween(rng, 1950, 2024),
      isbn13s,
      isbn10s,
      editionCount: Math.max(1, isbn13s.length, rng() < 0.7 ? intBetween(rng, 1, 5) : intBetween(rng, 6, 80)),
      coverId: rng() < 0.85 ? intBetween(rng, 1_000_000, 14_999_999) : null,
      language: [...pick(rng, LANGUAGES)],
    });
  }
  return works;
}

const cache = new Map<string, CatalogueWork[]>();
const CACHE_LIMIT = 500;

/**
 * The works of `name`, primary author first and spelled exactly as given. Total: any non-empty name has
 * works, except keys starting with "zz-unknown". Returns fresh copies; callers may mutate them.
 */
export function worksForAuthor(name: string): CatalogueWork[] {
  const key = authorKey(name);
  if (key === "" || key.startsWith("zz-unknown")) return [];
  // Cache per spelling: the primary author is the name as given, so spellings differ in `authors`.
  let works = cache.get(name);
  if (works === undefined) {
    works = key === RECORDED_KEY ? recordedWorks(name) : generatedWorks(name, key);
    if (cache.size >= CACHE_LIMIT) {
      const oldest = cache.keys().next().value;
      if (oldest !== undefined) cache.delete(oldest);
    }
    cache.set(name, works);
  }
  return structuredClone(works);
}
