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
 *   `isbn13`, `isbn`, `isbn10`, `isbn/uid`.
 * - ISBNs: a row's first usable ISBN (ISBN-10 converted) is one ISBN work item (deduped by ISBN-13). A row
 *   whose ISBN cells hold only values that are not ISBNs (Excel's `9.78053E+12`, an ASIN, a bad check digit)
 *   counts in `isbnsUnusable`; an empty cell (Goodreads' `=""`) is not counted.
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
import { readIsbnCell, type UnusableIsbnReason } from "./isbn";
import { authorNameProblem, echo, MAX_REJECTION_EXAMPLES, MAX_ROW_CHARS } from "./limits";
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
  /** Distinct valid ISBN-13s (ISBN-10s converted), first-seen order: each becomes an ISBN work item. */
  isbns: string[];
  /** Rows whose ISBN cells hold something, none of it a usable ISBN: not warmed by ISBN. */
  isbnsUnusable: UnusableIsbns;
  /** Data rows in which no author name was found. */
  rowsWithoutAuthor: number;
  /** Data rows with a value that breaks a limit (`limits.ts`); their other authors still count. */
  rowsRejected: number;
  /** The first few refused rows, with why. */
  rejections: RowRejection[];
}

export interface UnusableIsbns {
  count: number;
  /** The first few, with the value as written (cut to a short echo) and why it is not an ISBN. */
  examples: { row: number; value: string; reason: UnusableIsbnReason }[];
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
    isbnColumns: columns("isbn13", "isbn", "isbn10", "isbn/uid"),
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

/** The part of papaparse's chunk parser this module drives (its own streamers do the same). */
interface PapaHandle {
  parse(input: string, baseIndex: number, ignoreLastRow: boolean): { meta: { cursor: number } };
}
type PapaStep = (results: Papa.ParseStepResult<string[]>, parser: Papa.Parser) => void;
const ParserHandle = (Papa as unknown as { ParserHandle: new (config: Papa.ParseConfig) => PapaHandle })
  .ParserHandle;

/**
 * A library export parsed as it arrives: `push` text chunks (any split, even inside a quoted field or a
 * CRLF), then `finish`. Only the unfinished last row is held between chunks, and a row longer than
 * MAX_ROW_CHARS is refused (`row_too_long`), so memory stays bounded whatever the file. Every input problem
 * is an `AppError` made by `badRequest`: `empty_csv`, `unreadable_csv`, `row_too_long`, `no_author_column`,
 * `too_many_rows` (413), `no_rows`, `no_authors`.
 */
export class ExportParser {
  private readonly maxRows: number | undefined;
  private started = false;
  private pendingCr = false;
  private seenContent = false;
  private hasNul = false;
  /** Text before the header line is complete (the delimiter is chosen from it). */
  private head = "";
  private handle = null as PapaHandle | null;
  private partial = "";
  private baseIndex = 0;
  private header = null as string[] | null;
  private plan = null as ColumnPlan | null;
  private recordNumber = 0;
  private rows = 0;
  private rowsWithoutAuthor = 0;
  private authorMentions = 0;
  private rowsRejected = 0;
  private readonly rejections: RowRejection[] = [];
  private readonly authors: ExportAuthor[] = [];
  private readonly seenAuthors = new Set<string>();
  private readonly isbns = new Set<string>();
  private readonly isbnsUnusable: UnusableIsbns = { count: 0, examples: [] };
  private failure = null as AppError | null;

  constructor(opts: ParseExportOptions = {}) {
    this.maxRows = opts.maxRows;
  }

  push(chunk: string): void {
    let text = chunk;
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    // CRLF and lone CR become LF, also when a CRLF is split between two chunks.
    if (this.pendingCr) text = `\r${text}`;
    this.pendingCr = text.endsWith("\r");
    if (this.pendingCr) text = text.slice(0, -1);
    if (text.includes("\r")) text = text.replace(/\r\n?/g, "\n");
    if (!this.seenContent && /\S/.test(text)) this.seenContent = true;
    if (!this.hasNul && text.includes("\0")) this.hasNul = true;
    if (this.handle === null) {
      this.head += text;
      const start = this.head.search(/\S/);
      if (start === -1 || this.head.indexOf("\n", start) === -1) {
        if (this.head.length > MAX_ROW_CHARS) throw rowTooLong(1);
        return;
      }
      this.startParsing();
      return;
    }
    this.feed(text, false);
  }

  finish(): ParsedExport {
    if (this.pendingCr) {
      this.pendingCr = false;
      this.push("\n");
    }
    if (!this.seenContent) {
      throw badRequest(
        "empty_csv",
        "The uploaded file is empty: expected a CSV library export with a header row",
      );
    }
    if (this.handle === null) this.startParsing();
    this.feed("", true);
    return this.result();
  }

  private startParsing(): void {
    const head = this.head;
    this.head = "";
    this.handle = new ParserHandle({
      delimiter: detectDelimiter(head),
      newline: "\n",
      header: false,
      dynamicTyping: false,
      skipEmptyLines: false,
      step: ((results, parser) => this.step(results, parser)) as PapaStep,
    } as Papa.ParseConfig);
    this.feed(head, false);
  }

  /** Parses the held partial row plus `text`; keeps what is after the last complete row. */
  private feed(text: string, last: boolean): void {
    const aggregate = this.partial + text;
    this.partial = "";
    const results = (this.handle as PapaHandle).parse(aggregate, this.baseIndex, !last);
    if (this.failure !== null) throw this.failure;
    if (last) return;
    this.partial = aggregate.substring(results.meta.cursor - this.baseIndex);
    this.baseIndex = results.meta.cursor;
    if (this.partial.length > MAX_ROW_CHARS) throw rowTooLong(this.recordNumber + 1);
  }

  private step(results: Papa.ParseStepResult<string[]>, parser: Papa.Parser): void {
    const fields = results.data;
    const rowNumber = this.header === null ? 1 : ++this.recordNumber;
    const overLimit = this.maxRows !== undefined && this.rows > this.maxRows;
    if (!overLimit) {
      const problem = this.rowProblem(results, fields, rowNumber);
      if (problem !== null) {
        this.failure = problem;
        parser.abort();
        return;
      }
    }
    if (isBlankRecord(fields)) return;
    if (this.header === null) {
      this.readHeader(fields, parser);
      return;
    }
    this.rows++;
    if (overLimit || this.plan === null) return;
    this.readRow(fields, rowNumber, this.plan);
  }

  private rowProblem(
    results: Papa.ParseStepResult<string[]>,
    fields: string[],
    row: number,
  ): AppError | null {
    const error = results.errors.find((e) => e.code !== "TooFewFields" && e.code !== "TooManyFields");
    if (error) return unreadable(row, error.message);
    if (this.hasNul && fields.some((field) => field.includes("\0"))) {
      return unreadable(
        row,
        "the file contains NUL characters: it looks binary or UTF-16 encoded, not a UTF-8 CSV",
      );
    }
    return null;
  }

  private readHeader(fields: string[], parser: Papa.Parser): void {
    this.header = fields;
    this.recordNumber = 1;
    this.plan = planColumns(fields);
    if (this.plan !== null) return;
    const columnsFound = fields
      .slice(0, MAX_HEADERS_IN_ERROR)
      .map((name) => echo(name.replace(/^\uFEFF/, "").trim()));
    this.failure = badRequest(
      "no_author_column",
      `No author column found: looked for a column named ${AUTHOR_COLUMNS_LOOKED_FOR.map((c) => `"${c}"`).join(", ")} (any case)`,
      { columnsFound, columnsLookedFor: AUTHOR_COLUMNS_LOOKED_FOR },
    );
    parser.abort();
  }

  private readRow(fields: string[], rowNumber: number, plan: ColumnPlan): void {
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
        this.authorMentions++;
        const key = authorKey(name);
        if (!this.seenAuthors.has(key)) {
          this.seenAuthors.add(key);
          this.authors.push({ key, name, firstRow: rowNumber });
        }
      }
    }
    if (rowProblem !== null) {
      this.rowsRejected++;
      if (this.rejections.length < MAX_REJECTION_EXAMPLES)
        this.rejections.push({ row: rowNumber, reason: rowProblem });
    } else if (!rowHasAuthor) this.rowsWithoutAuthor++;
    this.readIsbns(fields, rowNumber, plan);
  }

  /** The row's first usable ISBN, else (when a cell held something) the row counts as unusable. */
  private readIsbns(fields: string[], rowNumber: number, plan: ColumnPlan): void {
    let unusable = null as UnusableIsbns["examples"][number] | null;
    for (const index of plan.isbnColumns) {
      const raw = fields[index];
      if (!raw) continue;
      const cell = readIsbnCell(raw);
      if (cell.kind === "isbn") {
        this.isbns.add(cell.isbn13);
        return;
      }
      if (cell.kind === "unusable")
        unusable ??= { row: rowNumber, value: echo(raw.trim()), reason: cell.reason };
    }
    if (unusable === null) return;
    this.isbnsUnusable.count++;
    if (this.isbnsUnusable.examples.length < MAX_REJECTION_EXAMPLES)
      this.isbnsUnusable.examples.push(unusable);
  }

  private result(): ParsedExport {
    const { rows, maxRows, plan, authors, rowsRejected, rejections } = this;
    // Only separators/whitespace: nothing that could be a header.
    if (plan === null) {
      throw badRequest("empty_csv", "The uploaded file has no header row: expected a CSV library export");
    }
    if (maxRows !== undefined && rows > maxRows) {
      throw badRequest(
        "too_many_rows",
        `The export has ${rows} rows; at most ${maxRows} can be imported at once`,
        { limit: maxRows, rows },
        413,
      );
    }
    if (rows === 0) throw badRequest("no_rows", "The CSV has a header row but no data rows");
    if (authors.length === 0) {
      const refused = rowsRejected > 0 ? ` (${rowsRejected} refused: ${rejections[0]?.reason})` : "";
      throw badRequest("no_authors", `None of the ${rows} rows names a usable author${refused}`, {
        rows,
        format: plan.format,
        ...(rowsRejected > 0 ? { rowsRejected, rejections } : {}),
      });
    }
    return {
      format: plan.format,
      rows,
      authors,
      authorMentions: this.authorMentions,
      duplicatesSkipped: this.authorMentions - authors.length,
      isbns: [...this.isbns],
      isbnsUnusable: this.isbnsUnusable,
      rowsWithoutAuthor: this.rowsWithoutAuthor,
      rowsRejected,
      rejections,
    };
  }
}

function rowTooLong(row: number): AppError {
  return badRequest(
    "row_too_long",
    `Row ${row} is longer than ${MAX_ROW_CHARS} characters: not a library export row (an unclosed quote?)`,
    { row, limit: MAX_ROW_CHARS },
  );
}

/** Parses a whole export held as one string (tests, small inputs); uploads stream through ExportParser. */
export function parseLibraryExport(text: string, opts: ParseExportOptions = {}): ParsedExport {
  const parser = new ExportParser(opts);
  parser.push(text);
  return parser.finish();
}
