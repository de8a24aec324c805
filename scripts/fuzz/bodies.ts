/**
 * Generators (fast-check arbitraries) for the fuzz suite: CSV texts for the parser and whole HTTP uploads
 * for the upload routes. Shared by test/unit/csv-fuzz.test.ts, test/worker/upload-fuzz.test.ts and
 * `npm run fuzz` (scripts/fuzz.ts), so it uses only fast-check and web-standard APIs (no Node, no workerd).
 *
 * What is covered: random bytes; token soup of separators, quotes, CR/LF/CRLF, BOM and NUL; well-formed
 * Goodreads/StoryGraph/generic exports (optionally with a BOM, CRLF, `;`/tab delimiters, quoted cells);
 * huge author cells (300–20,000 characters, ASCII and multi-byte); hundreds of columns; header-only files;
 * real exports (the fixtures) with one mutated cell. Upload shapes: raw CSV, multipart (including broken
 * framing and duplicate `file` parts), JSON (including invalid base64, invalid JSON, odd option values),
 * the legacy JSON route, and wrong content types. Valid options always ask for maxDepth 0.
 */
import fc from "fast-check";

/** Bytes backed by a plain ArrayBuffer (what fetch and Request accept as a body). */
export type Bytes = Uint8Array<ArrayBuffer>;

export type Shape = "csv" | "multipart" | "json" | "legacy" | "wrong-type";
export const SHAPES: readonly Shape[] = ["csv", "multipart", "json", "legacy", "wrong-type"];

/** A generated CSV: `kind` names the generator, for summaries and reproducers. */
export interface CsvCase {
  kind: string;
  text: string;
}

/** A generated upload request, independent of any HTTP client. */
export interface FuzzRequest {
  shape: Shape;
  /** Which generators made it, e.g. "multipart/duplicate-file + csv/huge-cell". */
  kind: string;
  /** Path and query, e.g. "/api/jobs?maxDepth=0". */
  path: string;
  headers: Record<string, string>;
  body: Bytes;
  /** Sent with a wrong or missing token (the answer must be 401, never a job). */
  badToken: boolean;
}

export interface Fixtures {
  goodreads: string[];
  storygraph: string[];
}

// ---------------------------------------------------------------------------------------------------------
// Building blocks
// ---------------------------------------------------------------------------------------------------------

const NAMES = [
  "Ada Writer",
  "René Guénon",
  "Dawkins, Richard",
  "Sagan, Carl; Druyan, Ann",
  "Фёдор Достоевский",
  "村上春樹",
  "Unknown",
  "J. R. R. Tolkien",
  "Bell hooks",
  "Gabriel García Márquez",
  "O'Brien, Flann",
  'The "Quoted" One',
  "  spaced   out  ",
  "\u00a0NBSP\u00a0Name",
  "Zoë Ørsted",
  "A & B",
];

const ODD_CHARS = [
  ",",
  ";",
  "\t",
  '"',
  "\n",
  "\r",
  "\r\n",
  "\0",
  "\uFEFF",
  " ",
  "Я",
  "😀",
  "\u0301",
  "\uD800",
];

/** Strings likely to break a CSV cell: names, odd characters, random Unicode (lone surrogates included). */
export const cellText: fc.Arbitrary<string> = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...NAMES) },
  { weight: 2, arbitrary: fc.string({ maxLength: 20 }) },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 20 }) },
  {
    weight: 2,
    arbitrary: fc
      .array(fc.oneof(fc.constantFrom(...ODD_CHARS), fc.constantFrom(...NAMES)), { maxLength: 6 })
      .map((parts) => parts.join("")),
  },
  { weight: 1, arbitrary: fc.constant("") },
);

/** A long author name: 300–20,000 characters of one repeated unit (ASCII, Cyrillic, accents, emoji). */
export const hugeName: fc.Arbitrary<string> = fc
  .record({
    unit: fc.constantFrom("a", "Я", "é", "😀", "ab ", "Jo, "),
    // Lengths spread over the whole range (fast-check biases integers towards small values, so the
    // notable sizes are also drawn directly).
    length: fc.oneof(
      { weight: 1, arbitrary: fc.integer({ min: 300, max: 1_500 }) },
      { weight: 3, arbitrary: fc.constantFrom(300, 513, 1_024, 1_025, 1_100, 2_048, 5_000, 20_000) },
      { weight: 1, arbitrary: fc.integer({ min: 1_500, max: 20_000 }) },
    ),
  })
  .map(({ unit, length }) => unit.repeat(Math.ceil(length / unit.length)).slice(0, length));

function quote(cell: string): string {
  return `"${cell.replace(/"/g, '""')}"`;
}

/** Quotes a cell when it must be (or always, or never: a broken writer). */
function writeCell(cell: string, delimiter: string, quoting: "auto" | "always" | "never"): string {
  if (quoting === "always") return quote(cell);
  if (quoting === "never") return cell;
  return /["\r\n]/.test(cell) || cell.includes(delimiter) ? quote(cell) : cell;
}

interface Layout {
  header: string[];
  /** Column index of each author column, so rows can put names there. */
  authorColumns: number[];
  delimiter: string;
}

const LAYOUTS: fc.Arbitrary<Layout> = fc.oneof(
  fc.constant<Layout>({
    header: ["Book Id", "Title", "Author", "Author l-f", "Additional Authors", "ISBN", "ISBN13"],
    authorColumns: [2, 4],
    delimiter: ",",
  }),
  fc.constant<Layout>({
    header: ["Title", "Authors", "Contributors", "ISBN/UID", "Format"],
    authorColumns: [1],
    delimiter: ",",
  }),
  fc
    .record({
      column: fc.constantFrom("Author", "author", "AUTHORS", "Authors", " author ", "\uFEFFAuthor"),
      delimiter: fc.constantFrom(",", ";", "\t"),
      extra: fc.constantFrom(["Title"], ["Title", "ISBN"], [], ["isbn13", "Title", "Author"]),
    })
    .map(({ column, delimiter, extra }) => ({
      header: [...extra, column],
      authorColumns: [extra.length],
      delimiter,
    })),
);

/** A row's cells: mostly plausible values, author columns filled with names. */
function rowArbitrary(layout: Layout, name: fc.Arbitrary<string>): fc.Arbitrary<string[]> {
  const cells = layout.header.map((_, index) =>
    layout.authorColumns.includes(index)
      ? name
      : fc.oneof(
          { weight: 4, arbitrary: fc.constantFrom("A Book", "9780141026169", "", '="0141026162"', "x") },
          { weight: 1, arbitrary: cellText },
        ),
  );
  return fc.tuple(...cells);
}

const LINE_ENDINGS = fc.constantFrom("\n", "\r\n", "\r");

/** A whole export built from a layout and rows. */
function exportText(name: fc.Arbitrary<string>, maxRows: number): fc.Arbitrary<string> {
  return LAYOUTS.chain((layout) =>
    fc
      .record({
        rows: fc.array(rowArbitrary(layout, name), { minLength: 0, maxLength: maxRows }),
        eol: LINE_ENDINGS,
        bom: fc.boolean(),
        quoting: fc.constantFrom<("auto" | "always" | "never")[]>("auto", "auto", "auto", "always", "never"),
        trailing: fc.constantFrom("", "", "\n", "\n\n", ",,,\n"),
      })
      .map(({ rows, eol, bom, quoting, trailing }) => {
        const lines = [layout.header, ...rows].map((cells) =>
          cells.map((c) => writeCell(c, layout.delimiter, quoting)).join(layout.delimiter),
        );
        return `${bom ? "\uFEFF" : ""}${lines.join(eol)}${eol}${trailing}`;
      }),
  );
}

/** Keeps the first `lines` lines of a fixture, so bodies stay small. */
function headOf(text: string, lines: number): string {
  const all = text.split("\n");
  return all.slice(0, lines).join("\n");
}

function mutateCell(line: string, cellIndex: number, replacement: string): string {
  // Fixture lines are comma-separated with quoted cells; a naive split is fine for choosing a cell:
  // the mutation is meant to land anywhere, including inside a quoted cell.
  const cells = line.split(",");
  const index = cellIndex % Math.max(1, cells.length);
  cells[index] = replacement;
  return cells.join(",");
}

const MUTATIONS: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: cellText },
  { weight: 2, arbitrary: hugeName },
  { weight: 1, arbitrary: hugeName.map((n) => quote(n)) },
  { weight: 2, arbitrary: fc.constantFrom('"', '"unterminated', 'a"b', "\0", "\uFEFF", "", '""', "\r") },
);

// ---------------------------------------------------------------------------------------------------------
// CSV texts (the parser's input; also the file inside every upload)
// ---------------------------------------------------------------------------------------------------------

/** Every CSV generator, by name. `fixtures` are whole export files (real Goodreads/StoryGraph exports). */
export function csvCases(fixtures: Fixtures): fc.Arbitrary<CsvCase> {
  const tagged = (kind: string, arbitrary: fc.Arbitrary<string>) =>
    arbitrary.map((text): CsvCase => ({ kind, text }));
  const fixtureTexts = [...fixtures.goodreads, ...fixtures.storygraph];
  return fc.oneof(
    {
      weight: 2,
      arbitrary: tagged(
        "random-bytes",
        fc.uint8Array({ maxLength: 2_000 }).map((b) => new TextDecoder().decode(b)),
      ),
    },
    { weight: 1, arbitrary: tagged("random-unicode", fc.string({ unit: "binary", maxLength: 500 })) },
    {
      weight: 3,
      arbitrary: tagged(
        "token-soup",
        fc
          .array(
            fc.oneof(
              fc.constantFrom(...ODD_CHARS),
              fc.constantFrom("Author", "Authors", "author", "Title", "ISBN13", "Additional Authors"),
              fc.constantFrom(...NAMES),
            ),
            { maxLength: 60 },
          )
          .map((parts) => parts.join("")),
      ),
    },
    { weight: 6, arbitrary: tagged("export", exportText(cellText, 12)) },
    {
      weight: 5,
      arbitrary: tagged(
        "huge-cell",
        exportText(fc.oneof({ weight: 1, arbitrary: hugeName }, { weight: 3, arbitrary: cellText }), 4),
      ),
    },
    {
      weight: 1,
      arbitrary: tagged(
        "many-columns",
        fc
          .record({
            columns: fc.integer({ min: 50, max: 3_000 }),
            at: fc.nat(),
            rows: fc.integer({ min: 0, max: 3 }),
          })
          .map(({ columns, at, rows }) => {
            const header = Array.from({ length: columns }, (_, i) => `c${i}`);
            header[at % columns] = "Author";
            const row = Array.from({ length: columns }, (_, i) => (i === at % columns ? "Ada Writer" : "v"));
            return [header, ...Array.from({ length: rows }, () => row)].map((r) => r.join(",")).join("\n");
          }),
      ),
    },
    {
      weight: 1,
      arbitrary: tagged(
        "header-only",
        fc
          .record({
            header: fc.constantFrom(
              "Title,Author",
              "Book Id,Title,Author,Additional Authors,ISBN13",
              "Title,Authors,Contributors,ISBN/UID",
              "author",
              "\uFEFFAuthor;Title",
              "Title,Year",
            ),
            eol: fc.constantFrom("", "\n", "\r\n", "\n\n\n", "\n,,\n"),
          })
          .map(({ header, eol }) => `${header}${eol}`),
      ),
    },
    {
      weight: 6,
      arbitrary: tagged(
        "mutated-fixture",
        fc
          .record({
            fixture: fc.constantFrom(...fixtureTexts),
            lines: fc.integer({ min: 2, max: 40 }),
            line: fc.nat(),
            cell: fc.nat(),
            replacement: MUTATIONS,
          })
          .map(({ fixture, lines, line, cell, replacement }) => {
            const rows = headOf(fixture, lines).split("\n");
            const target = 1 + (line % Math.max(1, rows.length - 1));
            if (target < rows.length) rows[target] = mutateCell(rows[target] ?? "", cell, replacement);
            return rows.join("\n");
          }),
      ),
    },
  );
}

// ---------------------------------------------------------------------------------------------------------
// Upload requests
// ---------------------------------------------------------------------------------------------------------

const encoder = new TextEncoder();
const utf8 = (text: string): Bytes => new Uint8Array(encoder.encode(text));

function concat(parts: (string | Bytes)[]): Bytes {
  const chunks = parts.map((p) => (typeof p === "string" ? utf8(p) : p));
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

export function base64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** An option value as a JSON value: valid (0, "normal"…) or odd. `undefined` = field absent. */
type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

const ODD_OPTION_VALUES: JsonValue[] = ["", "0x3", " 2", null, false, [], -1, 4, 2.5, "1e0", "NaN", true, {}];

const maxDepthValue: fc.Arbitrary<JsonValue | undefined> = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom<JsonValue | undefined>(0, "0") },
  { weight: 4, arbitrary: fc.constantFrom<JsonValue | undefined>(...ODD_OPTION_VALUES, undefined) },
);
const priorityValue: fc.Arbitrary<JsonValue | undefined> = fc.oneof(
  { weight: 16, arbitrary: fc.constantFrom<JsonValue | undefined>("low", "normal", "high", undefined) },
  {
    weight: 2,
    arbitrary: fc.constantFrom<JsonValue | undefined>("", "HIGH", " normal", "urgent", null, 1, [], false),
  },
);
const filenameValue: fc.Arbitrary<JsonValue | undefined> = fc.oneof(
  { weight: 16, arbitrary: fc.constantFrom<JsonValue | undefined>(undefined, "library.csv", "Я.csv") },
  {
    weight: 1,
    arbitrary: fc.constantFrom<JsonValue | undefined>("", "a".repeat(300), "../../etc/passwd", 7),
  },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
);

/** How a JSON option value reads as a string (query string, form field). */
function asText(value: JsonValue): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

interface Options {
  maxDepth: JsonValue | undefined;
  priority: JsonValue | undefined;
  filename: JsonValue | undefined;
}

const options: fc.Arbitrary<Options> = fc.record({
  maxDepth: maxDepthValue,
  priority: priorityValue,
  filename: filenameValue,
});

function queryString(opts: Options, extra: string): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(opts)) {
    if (value !== undefined) params.append(key, asText(value as JsonValue));
  }
  const text = params.toString();
  const joined = [text, extra].filter((s) => s !== "").join("&");
  return joined === "" ? "" : `?${joined}`;
}

const EXTRA_QUERY = fc.oneof(
  { weight: 12, arbitrary: fc.constant("") },
  { weight: 1, arbitrary: fc.constantFrom("maxDepth=0&maxDepth=3", "priority", "x=%FF", "maxDepth=%00") },
);

/** A CSV case's text as bytes, sometimes re-encoded (UTF-16, Latin-1-ish) or truncated mid-character. */
function fileBytes(csv: fc.Arbitrary<CsvCase>): fc.Arbitrary<{ kind: string; bytes: Bytes }> {
  return fc
    .record({
      csv,
      encoding: fc.oneof(
        { weight: 12, arbitrary: fc.constant("utf8") },
        { weight: 1, arbitrary: fc.constantFrom("utf16le", "latin1", "cut") },
      ),
    })
    .map(({ csv, encoding }) => {
      const text = csv.text;
      let bytes: Bytes;
      if (encoding === "utf16le") {
        bytes = new Uint8Array(text.length * 2);
        for (let i = 0; i < text.length; i++) {
          const code = text.charCodeAt(i);
          bytes[i * 2] = code & 0xff;
          bytes[i * 2 + 1] = code >> 8;
        }
      } else if (encoding === "latin1") {
        bytes = Uint8Array.from(text, (c) => c.charCodeAt(0) & 0xff);
      } else {
        bytes = utf8(text);
        if (encoding === "cut" && bytes.length > 1) bytes = bytes.subarray(0, bytes.length - 1);
      }
      return { kind: `csv/${csv.kind}${encoding === "utf8" ? "" : `+${encoding}`}`, bytes };
    });
}

const CSV_CONTENT_TYPES = [
  "text/csv",
  "text/csv; charset=utf-8",
  "TEXT/CSV",
  "application/csv",
  "text/plain",
  "application/vnd.ms-excel",
];

function csvRequest(file: fc.Arbitrary<{ kind: string; bytes: Bytes }>): fc.Arbitrary<FuzzRequest> {
  return fc
    .record({ file, opts: options, extra: EXTRA_QUERY, type: fc.constantFrom(...CSV_CONTENT_TYPES) })
    .map(({ file, opts, extra, type }) => ({
      shape: "csv" as const,
      kind: `csv-body + ${file.kind}`,
      path: `/api/jobs${queryString(opts, extra)}`,
      headers: { "Content-Type": type },
      body: file.bytes,
      badToken: false,
    }));
}

type Framing =
  | "ok"
  | "duplicate-file"
  | "no-file"
  | "file-as-field"
  | "missing-close"
  | "wrong-boundary"
  | "no-boundary-param"
  | "lf-only"
  | "truncated"
  | "garbage"
  | "empty";

/** "ok" ten times out of (10 + the rare cases): mostly well-formed bodies, each rare case now and then. */
function mostlyOk<T extends string>(...rare: T[]): fc.Arbitrary<T | "ok"> {
  return fc.constantFrom<(T | "ok")[]>(...Array.from({ length: 10 }, () => "ok" as const), ...rare);
}

function multipartRequest(file: fc.Arbitrary<{ kind: string; bytes: Bytes }>): fc.Arbitrary<FuzzRequest> {
  return fc
    .record({
      file,
      second: file,
      opts: options,
      framing: mostlyOk<Framing>(
        "duplicate-file",
        "duplicate-file",
        "no-file",
        "file-as-field",
        "missing-close",
        "wrong-boundary",
        "no-boundary-param",
        "lf-only",
        "truncated",
        "garbage",
        "empty",
      ),
      boundary: fc.constantFrom("----fuzzBoundary7MA4YWxk", "x", "a".repeat(70), "b=c;d"),
      cut: fc.nat(),
    })
    .map(({ file, second, opts, framing, boundary, cut }) => {
      const eol = framing === "lf-only" ? "\n" : "\r\n";
      const parts: (string | Bytes)[] = [];
      const field = (name: string, value: string) =>
        parts.push(
          `--${boundary}${eol}Content-Disposition: form-data; name="${name}"${eol}${eol}${value}${eol}`,
        );
      const filePart = (bytes: Bytes, asField: boolean) => {
        const filename = opts.filename === undefined ? "library.csv" : asText(opts.filename);
        const disposition = asField
          ? 'form-data; name="file"'
          : `form-data; name="file"; filename="${filename.replace(/"/g, "%22")}"`;
        parts.push(
          `--${boundary}${eol}Content-Disposition: ${disposition}${eol}Content-Type: text/csv${eol}${eol}`,
          bytes,
          eol,
        );
      };
      if (opts.maxDepth !== undefined) field("maxDepth", asText(opts.maxDepth));
      if (opts.priority !== undefined) field("priority", asText(opts.priority));
      if (framing !== "no-file") filePart(file.bytes, framing === "file-as-field");
      if (framing === "duplicate-file") filePart(second.bytes, false);
      if (framing !== "missing-close") parts.push(`--${boundary}--${eol}`);
      let body = concat(parts);
      if (framing === "truncated") body = body.subarray(0, cut % Math.max(1, body.length));
      if (framing === "garbage") body = utf8(`not multipart at all ${boundary}`);
      if (framing === "empty") body = new Uint8Array();
      const headerBoundary = framing === "wrong-boundary" ? `${boundary}-other` : boundary;
      const contentType =
        framing === "no-boundary-param"
          ? "multipart/form-data"
          : `multipart/form-data; boundary=${boundary.includes(";") || boundary.includes("=") ? `"${headerBoundary}"` : headerBoundary}`;
      return {
        shape: "multipart" as const,
        kind: `multipart/${framing} + ${file.kind}`,
        path: "/api/jobs",
        headers: { "Content-Type": contentType },
        body,
        badToken: false,
      };
    });
}

type JsonBody =
  | "ok"
  | "invalid-base64"
  | "csv-not-string"
  | "csv-missing"
  | "csv-empty"
  | "invalid-json"
  | "not-object"
  | "extra-keys"
  | "base64url"
  | "base64-whitespace";

function jsonRequest(
  shape: "json" | "legacy",
  file: fc.Arbitrary<{ kind: string; bytes: Bytes }>,
): fc.Arbitrary<FuzzRequest> {
  return fc
    .record({
      file,
      opts: options,
      variant: mostlyOk<JsonBody>(
        "invalid-base64",
        "csv-not-string",
        "csv-missing",
        "csv-empty",
        "invalid-json",
        "not-object",
        "extra-keys",
        "base64url",
        "base64-whitespace",
      ),
      garbage: fc.constantFrom(
        '{"csv":',
        '{"csv":"QQ=="',
        "{'csv':'QQ=='}",
        "",
        "nul\0l",
        '{"csv":"QQ=="}}',
        "\uFEFF{}",
        "\u00ff\u00fe{",
      ),
      badBase64: fc.constantFrom("!!!!", "QQ===", "Q", "QQ=QQ", "é", "%%", "QQ==\0", `${"A".repeat(4097)}*`),
      contentType: fc.constantFrom(
        ...Array.from({ length: 8 }, () => "application/json"),
        "application/json; charset=utf-8",
        "APPLICATION/JSON",
        "text/json",
        "text/csv",
      ),
    })
    .map(({ file, opts, variant, garbage, badBase64, contentType }) => {
      const object: Record<string, JsonValue> = {};
      const encoded = base64(file.bytes);
      if (variant === "ok" || variant === "extra-keys") object.csv = encoded;
      if (variant === "base64url") object.csv = encoded.replace(/\+/g, "-").replace(/\//g, "_");
      if (variant === "base64-whitespace") object.csv = encoded.replace(/(.{10})/g, "$1\n ");
      if (variant === "invalid-base64") object.csv = badBase64;
      if (variant === "csv-not-string") object.csv = [encoded];
      if (variant === "csv-empty") object.csv = "";
      for (const [key, value] of Object.entries(opts)) {
        if (value !== undefined) object[key] = value as JsonValue;
      }
      let text: string;
      if (variant === "invalid-json") text = garbage;
      else if (variant === "not-object") text = JSON.stringify([object]);
      else text = JSON.stringify(object);
      // Own "__proto__"/"constructor" keys, as a hostile client would send them.
      if (variant === "extra-keys")
        text = text.replace(/^\{/, '{"__proto__":{"maxDepth":3},"constructor":"x",');
      return {
        shape,
        kind: `${shape}/${variant}${contentType === "application/json" ? "" : ` (${contentType})`} + ${file.kind}`,
        path: shape === "json" ? "/api/jobs" : "/api/warming/upload",
        headers: { "Content-Type": contentType },
        body: utf8(text),
        badToken: false,
      };
    });
}

function wrongTypeRequest(file: fc.Arbitrary<{ kind: string; bytes: Bytes }>): fc.Arbitrary<FuzzRequest> {
  return fc
    .record({
      file,
      type: fc.constantFrom(
        "",
        "application/xml",
        "application/x-www-form-urlencoded",
        "multipart/mixed; boundary=x",
        "text/html",
        "application/octet-stream",
        "csv",
        "text/csv-schema",
        "application/json-seq",
      ),
      path: fc.constantFrom("/api/jobs", "/api/jobs?maxDepth=0", "/api/warming/upload"),
    })
    .map(
      ({ file, type, path }): FuzzRequest => ({
        shape: "wrong-type",
        kind: `wrong-type/${type || "(none)"} + ${file.kind}`,
        path,
        headers: type === "" ? {} : { "Content-Type": type },
        body: file.bytes,
        badToken: false,
      }),
    );
}

/**
 * Every upload generator. About 2% are sent with a wrong token (401). No request carries an
 * Idempotency-Key, so each 202 must create exactly one job.
 */
export function uploadRequests(fixtures: Fixtures): fc.Arbitrary<FuzzRequest> {
  const file = fileBytes(csvCases(fixtures));
  return fc
    .tuple(
      fc.oneof(
        { weight: 3, arbitrary: csvRequest(file) },
        { weight: 3, arbitrary: multipartRequest(file) },
        { weight: 3, arbitrary: jsonRequest("json", file) },
        { weight: 2, arbitrary: jsonRequest("legacy", file) },
        { weight: 1, arbitrary: wrongTypeRequest(file) },
      ),
      fc.integer({ min: 0, max: 49 }),
    )
    .map(([request, dice]) => (dice === 0 ? { ...request, badToken: true } : request));
}

/** A compact, copy-pasteable description of a request (body shown as text, cut to `max` characters). */
export function describeRequest(request: FuzzRequest, max = 400): string {
  const text = new TextDecoder().decode(request.body);
  const shown = text.length > max ? `${text.slice(0, max)}… (${request.body.length} bytes)` : text;
  return `${request.kind}\nPOST ${request.path} ${JSON.stringify(request.headers)}${
    request.badToken ? " (bad token)" : ""
  }\n${JSON.stringify(shown)}`;
}
