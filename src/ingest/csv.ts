/**
 * Reads a library export (Goodreads, StoryGraph or any CSV with an author column) into the set of
 * distinct authors to warm and the distinct ISBN-13s it mentions.
 *
 * Streaming: papaparse runs with `header: false` and a `step` callback, so only the current row
 * is alive at any time; columns are mapped to indexes once, from the header.
 *
 * Choices (each one deliberate, tests pin them):
 * - Headers are matched after removing a BOM, trimming, collapsing whitespace and lower-casing. When
 *   a header name appears twice, the first (left-most) column wins.
 * - Rows: "data rows" exclude the header and blank records (an empty line, or a record whose every
 *   field is empty or whitespace, e.g. `,,,`). Row numbers (`firstRow`, error `row`) count records
 *   the way a spreadsheet shows them: the header is row 1, the first record after it row 2, blank
 *   records included; a quoted field spanning several lines is still one row.
 * - Authors: a blank name (empty or whitespace after splitting) is skipped; nothing else is filtered
 *   ("Unknown", "Anonymous", "Various" are warmed like any name: they are real catalogue entries).
 *   Within a row every mention counts, even a repeat of the same author.
 * - Goodreads: `Author` is one name (never split); `Additional Authors` is split on commas. ISBN from
 *   `ISBN13`, else `ISBN` (ISBN-10 converted).
 * - StoryGraph: `Authors` split on commas; `Contributors` (narrators, translators…) are not warmed.
 *   `ISBN/UID` is kept only when it is a valid ISBN-10/13 (a 9-digit "ISBN" with a lost leading zero
 *   is not guessed at).
 * - Generic: the column `authors` (any case) wins over `author`. `author` holds one name per cell,
 *   never split, so "Dawkins, Richard" stays one author. `authors` is split on ";" when the cell
 *   contains one (so "Dawkins, Richard; Sagan, Carl" gives two "Last, First" names), otherwise on ",".
 *   "&" and " and " never split (too many single names contain them). ISBN from the first valid of
 *   `isbn13`, `isbn`, `isbn/uid`.
 * - Delimiter: comma, unless the header line has more semicolons or tabs than commas (spreadsheet
 *   exports in some locales); Goodreads and StoryGraph always use commas.
 * - Line endings: CRLF and lone CR are turned into LF first, so mixed endings parse too (line breaks
 *   inside quoted fields become LF).
 * - Unreadable input: any papaparse error (`MissingQuotes`, `InvalidQuotes`) or a NUL character
 *   (binary or UTF-16 file) → `unreadable_csv`. Ragged rows (too few/many fields) are fine: with
 *   `header: false` papaparse does not report them and missing cells read as empty.
 * - Limits (`limits.ts`): an author name longer than MAX_AUTHOR_NAME_CHARS is not warmed; its row is
 *   counted in `rowsRejected` (the first few listed in `rejections` with the reason), the row's other
 *   authors still count. Nothing past the limits reaches D1 or the queue.
 * - `maxRows`: once exceeded, rows are only counted (no more extraction) so the 413 can say how many
 *   rows the file has.
 */
import Papa from "papaparse";
import { type AppError, badRequest } from "../errors";
import { toIsbn13 } from "./isbn";
import { authorNameProblem, echo, MAX_REJECTION_EXAMPLES } from "./limits";
import { authorKey, cleanAuthorName } from "./normalize";

export type ExportFormat = "goodreads" | "storygraph" | "generic";

export interface ExportAuthor {
  /** `authorKey(name)`: the identity used for dedupe and cache keys. */
  key: string;
  /** Display spelling: the first one met, cleaned (`cleanAuthorName`). */
  name: string;
  /** Spreadsheet row number (header = 1) of the first row naming this author. */
  firstRow: number;
}

export interface ParsedExport {
  format: ExportFormat;
  /** Data rows (header excluded; blank records ignored). */
  rows: number;
  /** Distinct by key, in first-seen order, first spelling kept for display. */
  authors: ExportAuthor[];
  /** Every author occurrence counted (primary + additional / each of several). */
  authorMentions: number;
  /** `authorMentions - authors.length`. */
  duplicatesSkipped: number;
  /** Distinct valid ISBN-13s (ISBN-10s converted), first-seen order. */
  isbns: string[];
  /** Data rows in which no author name was found. */
  rowsWithoutAuthor: number;
  /** Data rows with a value that breaks a limit (`limits.ts`); their other authors still count. */
  rowsRejected: number;
  /** The first few refused rows, with why. */
  rejections: RowRejection[];
}

export interface RowRejection {
  row: number;
  reason: string;
}

export interface ParseExportOptions {
  /** More data rows than this → `too_many_rows` (413). */
  maxRows?: number;
}

/** Author column names, as listed in the `no_author_column` error. */
export const AUTHOR_COLUMNS_LOOKED_FOR = ["Author", "Authors", "author", "authors"];

/** How a cell of an author column becomes names. */
type Splitter = "none" | "comma" | "semicolonOrComma";

interface AuthorColumn {
  index: number;
  split: Splitter;
}

interface ColumnPlan {
  format: ExportFormat;
  authorColumns: AuthorColumn[];
  /** Tried in order; the first cell holding a valid ISBN wins. */
  isbnColumns: number[];
}

const MAX_HEADERS_IN_ERROR = 30;

function headerName(raw: string): string {
  return raw
    .replace(/^\uFEFF/, "")
    .replace(/\s+/gu, " ")
    .trim()
    .toLowerCase();
}

/** Picks the columns to read from the header row, or null when there is no author column. */
function planColumns(header: string[]): ColumnPlan | null {
  const indexOf = new Map<string, number>();
  header.forEach((raw, index) => {
    const name = headerName(raw);
    if (!indexOf.has(name)) indexOf.set(name, index);
  });
  const has = (name: string) => indexOf.has(name);
  const columns = (...names: string[]) =>
    names.flatMap((name) => {
      const index = indexOf.get(name);
      return index === undefined ? [] : [index];
    });

  if (has("author") && has("additional authors") && (has("isbn13") || has("book id"))) {
    return {
      format: "goodreads",
      authorColumns: [
        { index: indexOf.get("author") as number, split: "none" },
        { index: indexOf.get("additional authors") as number, split: "comma" },
      ],
      isbnColumns: columns("isbn13", "isbn"),
    };
  }
  if (has("authors") && (has("isbn/uid") || has("contributors"))) {
    return {
      format: "storygraph",
      authorColumns: [{ index: indexOf.get("authors") as number, split: "comma" }],
      isbnColumns: columns("isbn/uid"),
    };
  }
  const authors = indexOf.get("authors");
  const author = indexOf.get("author");
  if (authors === undefined && author === undefined) return null;
  return {
    format: "generic",
    authorColumns: [
      authors !== undefined
        ? { index: authors, split: "semicolonOrComma" }
        : { index: author as number, split: "none" },
    ],
    isbnColumns: columns("isbn13", "isbn", "isbn/uid"),
  };
}

function splitCell(cell: string, split: Splitter): string[] {
  switch (split) {
    case "none":
      return [cell];
    case "comma":
      return cell.split(",");
    case "semicolonOrComma":
      return cell.split(cell.includes(";") ? ";" : ",");
  }
}

function isBlankRecord(fields: string[]): boolean {
  for (const field of fields) {
    if (field !== "" && field.trim() !== "") return false;
  }
  return true;
}

/** Comma unless the header line clearly uses semicolons or tabs (counted outside quotes). */
function detectDelimiter(text: string): string {
  const start = text.search(/\S/);
  const end = text.indexOf("\n", start);
  const line = text.slice(start, end === -1 ? undefined : end);
  const counts: Record<string, number> = { ",": 0, ";": 0, "\t": 0 };
  let quoted = false;
  for (const char of line) {
    if (char === '"') quoted = !quoted;
    else if (!quoted && char in counts) counts[char] = (counts[char] ?? 0) + 1;
  }
  let best = ",";
  for (const candidate of [";", "\t"]) {
    if ((counts[candidate] ?? 0) > (counts[best] ?? 0)) best = candidate;
  }
  return best;
}

function unreadable(row: number, message: string): AppError {
  return badRequest("unreadable_csv", `The CSV could not be read at row ${row}: ${message}`, {
    row,
    message,
  });
}

/**
 * Parses a library export. Throws `AppError`s made by `badRequest` for every input problem:
 * `empty_csv`, `unreadable_csv`, `no_author_column`, `too_many_rows` (413), `no_rows`, `no_authors`.
 */
export function parseLibraryExport(text: string, opts: ParseExportOptions = {}): ParsedExport {
  const maxRows = opts.maxRows;
  let body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  if (!/\S/.test(body)) {
    throw badRequest(
      "empty_csv",
      "The uploaded file is empty: expected a CSV library export with a header row",
    );
  }
  if (body.includes("\r")) body = body.replace(/\r\n?/g, "\n");
  const hasNul = body.includes("\0");

  // `as` keeps TypeScript from narrowing these to `null`: the step callback assigns them.
  let header = null as string[] | null;
  let plan = null as ColumnPlan | null;
  let recordNumber = 0;
  let rows = 0;
  let rowsWithoutAuthor = 0;
  let authorMentions = 0;
  let rowsRejected = 0;
  const rejections: RowRejection[] = [];
  const authors: ExportAuthor[] = [];
  const seenAuthors = new Set<string>();
  const isbns = new Set<string>();
  let failure = null as AppError | null;

  Papa.parse<string[]>(body, {
    delimiter: detectDelimiter(body),
    newline: "\n",
    header: false,
    dynamicTyping: false,
    skipEmptyLines: false,
    step(results, parser) {
      const fields = results.data;
      const rowNumber = header === null ? 1 : ++recordNumber;
      const overLimit = maxRows !== undefined && rows > maxRows;

      if (!overLimit) {
        const error =
          results.errors.length === 0
            ? undefined
            : results.errors.find((e) => e.code !== "TooFewFields" && e.code !== "TooManyFields");
        if (error) {
          failure = unreadable(rowNumber, error.message);
          parser.abort();
          return;
        }
        if (hasNul && fields.some((field) => field.includes("\0"))) {
          failure = unreadable(
            rowNumber,
            "the file contains NUL characters: it looks binary or UTF-16 encoded, not a UTF-8 CSV",
          );
          parser.abort();
          return;
        }
      }
      if (isBlankRecord(fields)) return;

      if (header === null) {
        header = fields;
        recordNumber = 1;
        plan = planColumns(fields);
        if (plan === null) {
          const columnsFound = fields
            .slice(0, MAX_HEADERS_IN_ERROR)
            .map((name) => echo(name.replace(/^\uFEFF/, "").trim()));
          failure = badRequest(
            "no_author_column",
            `No author column found: looked for a column named ${AUTHOR_COLUMNS_LOOKED_FOR.map((c) => `"${c}"`).join(", ")} (any case)`,
            { columnsFound, columnsLookedFor: AUTHOR_COLUMNS_LOOKED_FOR },
          );
          parser.abort();
        }
        return;
      }

      rows++;
      if (overLimit || plan === null) return;

      let rowHasAuthor = false;
      let rowProblem = null as string | null;
      for (const column of plan.authorColumns) {
        const cell = fields[column.index];
        if (!cell) continue;
        for (const part of splitCell(cell, column.split)) {
          const name = cleanAuthorName(part);
          if (name === "") continue;
          const problem = authorNameProblem(name);
          if (problem !== null) {
            rowProblem ??= problem;
            continue;
          }
          rowHasAuthor = true;
          authorMentions++;
          const key = authorKey(name);
          if (!seenAuthors.has(key)) {
            seenAuthors.add(key);
            authors.push({ key, name, firstRow: rowNumber });
          }
        }
      }
      if (rowProblem !== null) {
        rowsRejected++;
        if (rejections.length < MAX_REJECTION_EXAMPLES)
          rejections.push({ row: rowNumber, reason: rowProblem });
      } else if (!rowHasAuthor) rowsWithoutAuthor++;

      for (const index of plan.isbnColumns) {
        const isbn = toIsbn13(fields[index]);
        if (isbn !== null) {
          isbns.add(isbn);
          break;
        }
      }
    },
  });

  if (failure !== null) throw failure;
  // Only separators/whitespace: nothing that could be a header.
  if (plan === null) {
    throw badRequest("empty_csv", "The uploaded file has no header row: expected a CSV library export");
  }
  const format = plan.format;
  if (maxRows !== undefined && rows > maxRows) {
    throw badRequest(
      "too_many_rows",
      `The export has ${rows} rows; at most ${maxRows} can be imported at once`,
      { limit: maxRows, rows },
      413,
    );
  }
  if (rows === 0) {
    throw badRequest("no_rows", "The CSV has a header row but no data rows");
  }
  if (authors.length === 0) {
    const refused = rowsRejected > 0 ? ` (${rowsRejected} refused: ${rejections[0]?.reason})` : "";
    throw badRequest("no_authors", `None of the ${rows} rows names a usable author${refused}`, {
      rows,
      format,
      ...(rowsRejected > 0 ? { rowsRejected, rejections } : {}),
    });
  }
  return {
    format,
    rows,
    authors,
    authorMentions,
    duplicatesSkipped: authorMentions - authors.length,
    isbns: [...isbns],
    rowsWithoutAuthor,
    rowsRejected,
    rejections,
  };
}
