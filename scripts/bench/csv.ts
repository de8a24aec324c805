import { mulberry32 } from "../../test/support/upstream/catalogue.ts";
/**
 * Goodreads-shaped library exports for the benchmarks, generated in memory and deterministic (seeded).
 *
 * Same 24-column header as a real export (test/fixtures/goodreads-2025.csv), ISBNs written `="..."`,
 * quoted fields where a real export quotes them (commas, quotes), a review on some rows so an average
 * row is ~300 bytes. Authors never contain commas (Goodreads splits Additional Authors on commas).
 */

export const GOODREADS_HEADER =
  "Book Id,Title,Author,Author l-f,Additional Authors,ISBN,ISBN13,My Rating,Average Rating,Publisher," +
  "Binding,Number of Pages,Year Published,Original Publication Year,Date Read,Date Added,Bookshelves," +
  "Bookshelves with positions,Exclusive Shelf,My Review,Spoiler,Private Notes,Read Count,Owned Copies";

/** The stand-in's deterministic PRNG (mulberry32), so generated files and the catalogue agree run to run. */
export const seededRandom = mulberry32;

const FIRST = (
  "Ada Alan Alice Amara Anton Aria Arjun Beatrix Boris Camille Carlos Chiara Dario Delia Elena Emil Ezra " +
  "Fatima Frida Gideon Hana Hugo Ilse Ivan Jonah Juno Kai Karin Laila Leon Lucia Magnus Malia Milo Nadia " +
  "Nils Octavia Oren Paloma Pietro Quinn Rania Rohan Sabine Sami Selma Teodor Tess Umar Valentina Viktor " +
  "Wanda Wes Ximena Yusuf Zara Zoltan Agnes Bruno Cora"
).split(" ");
const INITIALS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ".split("");
const SURNAMES = (
  "Abbott Albrecht Aldana Arnott Bakshi Barrow Bexley Brandt Calloway Castell Crane Dahl Devereux Drummond " +
  "Eckert Ferrante Fenwick Galloway Garrick Hale Hartmann Hendry Ibarra Jessup Kavanagh Keller Kinsella " +
  "Lamont Larsen Lisowski Maddox Marchetti Merrow Nakashima Norquist Oakes Orwin Pascoe Pellegrini Quarles " +
  "Radley Renshaw Rook Saltonstall Serrano Sinclair Strand Talbot Tovey Ulrich Vance Vidal Wakefield " +
  "Westergaard Whitcombe Yardley Zamora Zeller Ashby Bramwell"
).split(" ");

export interface BenchAuthor {
  name: string;
  lastFirst: string;
}

/** The i-th of up to |FIRST| × 26 × |SURNAMES| (≈ 95,000) distinct names: "Ada K. Abbott". */
export function benchAuthor(i: number): BenchAuthor {
  const first = FIRST[i % FIRST.length] as string;
  const rest = Math.floor(i / FIRST.length);
  const initial = INITIALS[rest % INITIALS.length] as string;
  const surname = SURNAMES[Math.floor(rest / INITIALS.length) % SURNAMES.length] as string;
  return { name: `${first} ${initial}. ${surname}`, lastFirst: `${surname}, ${first} ${initial}.` };
}

export const MAX_DISTINCT_AUTHORS = FIRST.length * INITIALS.length * SURNAMES.length;

/** A numbered author for the warm and politeness runs: "Bench Author 0001". */
export function numberedAuthor(prefix: string, i: number, width = 4): BenchAuthor {
  const n = String(i + 1).padStart(width, "0");
  const words = prefix.split(" ");
  const last = words.pop() ?? prefix;
  return { name: `${prefix} ${n}`, lastFirst: `${last} ${n}, ${words.join(" ") || last}` };
}

const ADJECTIVES =
  "Silent Hidden Broken Distant Golden Quiet Burning Forgotten Crimson Hollow Wandering Northern Restless Secret Glass Iron Lonely Painted Bitter Little Wild Paper Midnight".split(
    " ",
  );
const NOUNS =
  "Harbour Garden Orchard Lighthouse River Archive Kingdom Map Clockmaker Island Compass Library Meadow Bridge Lantern Tide Forest Observatory Mirror Sparrow Citadel Ledger Atlas".split(
    " ",
  );
const PUBLISHERS = [
  "Penguin",
  "Vintage",
  "Bloomsbury",
  "Faber & Faber",
  "Del Rey",
  "Tor Books",
  "Graywolf Press",
  "Basic Books",
  "Picador",
  "Fourth Estate",
  "HarperCollins",
  "Knopf",
];
const BINDINGS = ["Paperback", "Hardcover", "Kindle Edition", "Mass Market Paperback", "Audiobook"];
const SHELVES = ["fiction", "non-fiction", "history", "favourites", "book-club", "owned", "travel", "sci-fi"];
const REVIEWS = [
  'Slow start, but the last third is superb. "Unputdownable", as the blurb says, once it gets going.',
  "Read it on holiday; lovely prose, a little long in the middle, and the ending, frankly, rushed.",
  "Recommended by a friend. Beautifully written, quietly devastating, and full of small surprises.",
  "Did not finish.",
];

function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/** Goodreads writes ISBNs as Excel formulas: `="9781408839973"` (quoted in the CSV). */
function formulaField(value: string): string {
  return csvField(`="${value}"`);
}

function isbn13For(body9: string): { isbn10: string; isbn13: string } {
  let sum10 = 0;
  for (let i = 0; i < 9; i++) sum10 += Number(body9[i]) * (10 - i);
  const c10 = (11 - (sum10 % 11)) % 11;
  const twelve = `978${body9}`;
  let sum13 = 0;
  for (let i = 0; i < 12; i++) sum13 += Number(twelve[i]) * (i % 2 === 0 ? 1 : 3);
  return { isbn10: `${body9}${c10 === 10 ? "X" : c10}`, isbn13: `${twelve}${(10 - (sum13 % 10)) % 10}` };
}

function pick<T>(rng: () => number, items: readonly T[]): T {
  return items[Math.floor(rng() * items.length)] as T;
}

function date(rng: () => number, fromYear: number): string {
  const y = fromYear + Math.floor(rng() * (2026 - fromYear));
  const m = String(1 + Math.floor(rng() * 12)).padStart(2, "0");
  const d = String(1 + Math.floor(rng() * 28)).padStart(2, "0");
  return `${y}/${m}/${d}`;
}

function row(
  rng: () => number,
  bookId: number,
  index: number,
  author: BenchAuthor,
  additional: readonly BenchAuthor[],
): string {
  const adjective = pick(rng, ADJECTIVES);
  const noun = pick(rng, NOUNS);
  const series = rng() < 0.25 ? ` (The ${noun} Chronicles, #${1 + Math.floor(rng() * 6)})` : "";
  const title = rng() < 0.5 ? `The ${adjective} ${noun}${series}` : `${adjective} ${noun}: A Novel${series}`;
  let isbn10 = "";
  let isbn13 = "";
  if (rng() < 0.9) {
    let body = "";
    while (body.length < 9) body += String(Math.floor(rng() * 10));
    ({ isbn10, isbn13 } = isbn13For(body));
  }
  const read = rng() < 0.4;
  const shelf = read ? "read" : "to-read";
  const pages = 120 + Math.floor(rng() * 700);
  const year = 1950 + Math.floor(rng() * 75);
  const original = rng() < 0.7 ? String(year - Math.floor(rng() * 30)) : "";
  const review = read && rng() < 0.8 ? pick(rng, REVIEWS) : "";
  const shelves: string[] = read ? [] : ["to-read"];
  const extraShelves = Math.floor(rng() * 3);
  for (let k = 0; k < extraShelves; k++) {
    const shelf = pick(rng, SHELVES);
    if (!shelves.includes(shelf)) shelves.push(shelf);
  }
  const positions = shelves.map((s) => `${s} (#${1 + ((index * 7 + s.length) % 400)})`);
  return [
    String(bookId),
    csvField(title),
    csvField(author.name),
    csvField(author.lastFirst),
    csvField(additional.map((a) => a.name).join(", ")),
    formulaField(isbn10),
    formulaField(isbn13),
    read ? String(1 + Math.floor(rng() * 5)) : "0",
    (3 + rng() * 1.9).toFixed(2),
    csvField(pick(rng, PUBLISHERS)),
    pick(rng, BINDINGS),
    String(pages),
    String(year),
    original,
    read ? date(rng, 2015) : "",
    date(rng, 2012),
    csvField(shelves.join(", ")),
    csvField(positions.join(", ")),
    shelf,
    csvField(review),
    "",
    "",
    read ? String(1 + Math.floor(rng() * 2)) : "0",
    rng() < 0.2 ? "1" : "0",
  ].join(",");
}

export interface GeneratedExport {
  csv: string;
  rows: number;
  /** Distinct authors (primary and additional together). */
  distinctAuthors: number;
  /** Rows that name additional authors. */
  rowsWithAdditionalAuthors: number;
  bytes: number;
}

/**
 * `rows` rows naming exactly `distinctAuthors` distinct authors: row i < distinctAuthors has author i as
 * its primary author (so every author appears), later rows repeat random ones; ~12 % of rows name one
 * or two additional authors drawn from the same set (so the distinct count is exact).
 */
export function generateLibraryExport(opts: {
  rows: number;
  distinctAuthors: number;
  seed?: number;
  author?: (i: number) => BenchAuthor;
  additionalAuthorRate?: number;
}): GeneratedExport {
  const { rows, distinctAuthors, seed = 20_251_122, additionalAuthorRate = 0.12 } = opts;
  const author = opts.author ?? benchAuthor;
  if (distinctAuthors > rows) throw new Error("need at least one row per distinct author");
  if (!opts.author && distinctAuthors > MAX_DISTINCT_AUTHORS) {
    throw new Error(`at most ${MAX_DISTINCT_AUTHORS} distinct generated names`);
  }
  const rng = seededRandom(seed);
  const lines: string[] = [GOODREADS_HEADER];
  let withAdditional = 0;
  for (let i = 0; i < rows; i++) {
    const primary = i < distinctAuthors ? i : Math.floor(rng() * distinctAuthors);
    const additional: BenchAuthor[] = [];
    if (additionalAuthorRate > 0 && rng() < additionalAuthorRate) {
      const count = rng() < 0.7 ? 1 : 2;
      for (let k = 0; k < count; k++) {
        const other = Math.floor(rng() * distinctAuthors);
        if (other !== primary) additional.push(author(other));
      }
      if (additional.length > 0) withAdditional++;
    }
    lines.push(row(rng, 10_000_000 + i * 7, i, author(primary), additional));
  }
  const csv = `${lines.join("\n")}\n`;
  return {
    csv,
    rows,
    distinctAuthors,
    rowsWithAdditionalAuthors: withAdditional,
    bytes: Buffer.byteLength(csv),
  };
}

/** One row per numbered author ("Bench Author 0001" …), no additional authors: `count` root tasks. */
export function generateAuthorList(prefix: string, count: number, seed = 7): GeneratedExport {
  return generateLibraryExport({
    rows: count,
    distinctAuthors: count,
    seed,
    author: (i) => numberedAuthor(prefix, i, Math.max(4, String(count).length)),
    additionalAuthorRate: 0,
  });
}
