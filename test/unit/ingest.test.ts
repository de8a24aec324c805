import Papa from "papaparse";
import { describe, expect, it } from "vitest";
import { AppError } from "../../src/errors";
import { type ParsedExport, parseLibraryExport } from "../../src/ingest/csv";
import goodreads2019 from "../fixtures/goodreads-2019.csv?raw";
import goodreads2025 from "../fixtures/goodreads-2025.csv?raw";
import storygraph2025 from "../fixtures/storygraph-2025.csv?raw";

// ---------------------------------------------------------------------------------------------
// Independent reference computations (deliberately not using src/ingest).

/** Non-blank physical lines minus the header: valid for these fixtures, which have no quoted newlines. */
function countDataLines(csv: string): number {
  return csv.split(/\r\n|\n|\r/).filter((line) => line.replace(/,/g, "").trim() !== "").length - 1;
}

function records(csv: string): Record<string, string>[] {
  return Papa.parse<Record<string, string>>(csv, { header: true, skipEmptyLines: "greedy" }).data;
}

/** Written apart from normalize.ts: NFC, whitespace collapsed, lower-cased, initials spaced ("a.a." → "a. a."). */
const refKey = (name: string) =>
  name
    .normalize("NFC")
    .trim()
    .split(/\s+/u)
    .join(" ")
    .toLowerCase()
    .replace(/\.(?=\p{L})/gu, ". ");

interface Reference {
  rows: number;
  mentions: number;
  distinct: Set<string>;
}

function reference(csv: string, namesOf: (row: Record<string, string>) => string[]): Reference {
  const rows = records(csv);
  const distinct = new Set<string>();
  let mentions = 0;
  for (const row of rows) {
    for (const name of namesOf(row)) {
      if (name.trim() === "") continue;
      mentions++;
      distinct.add(refKey(name));
    }
  }
  return { rows: rows.length, mentions, distinct };
}

const goodreadsNames = (row: Record<string, string>) => [
  row.Author ?? "",
  ...(row["Additional Authors"] ?? "").split(","),
];
const storygraphNames = (row: Record<string, string>) => (row.Authors ?? "").split(",");

function checkIsbn13(isbn: string): boolean {
  if (!/^97[89]\d{10}$/.test(isbn)) return false;
  const digits = [...isbn].map(Number);
  const sum = digits.reduce((acc, d, i) => acc + d * (i % 2 === 0 ? 1 : 3), 0);
  return sum % 10 === 0;
}

/** Reference ISBN-10 → ISBN-13 (978 + nine digits + EAN check digit), for rows whose ISBN13 is unusable. */
function refIsbn10To13(isbn10: string): string | null {
  if (!/^\d{9}[\dX]$/.test(isbn10)) return null;
  const weighted = [...isbn10].reduce((acc, c, i) => acc + (c === "X" ? 10 : Number(c)) * (10 - i), 0);
  if (weighted % 11 !== 0) return null;
  const first12 = `978${isbn10.slice(0, 9)}`;
  for (let check = 0; check <= 9; check++) {
    if (checkIsbn13(`${first12}${check}`)) return `${first12}${check}`;
  }
  return null;
}

/** Goodreads: ISBN13 when it is a valid ISBN-13, else the ISBN column converted. */
function goodreadsIsbns(csv: string): Set<string> {
  const unwrap = (cell: string | undefined) => (cell ?? "").replace(/^="|"$/g, "");
  const isbns = new Set<string>();
  for (const row of records(csv)) {
    const isbn13 = unwrap(row.ISBN13);
    const isbn = checkIsbn13(isbn13) ? isbn13 : refIsbn10To13(unwrap(row.ISBN));
    if (isbn) isbns.add(isbn);
  }
  return isbns;
}

function byName(parsed: ParsedExport, name: string) {
  return parsed.authors.filter((a) => a.name === name);
}

function expectInvariants(parsed: ParsedExport) {
  expect(parsed.duplicatesSkipped).toBe(parsed.authorMentions - parsed.authors.length);
  expect(new Set(parsed.authors.map((a) => a.key)).size).toBe(parsed.authors.length);
  expect(new Set(parsed.isbns).size).toBe(parsed.isbns.length);
  for (const isbn of parsed.isbns) expect(checkIsbn13(isbn), isbn).toBe(true);
  const rows = parsed.authors.map((a) => a.firstRow);
  expect(rows).toEqual([...rows].sort((a, b) => a - b));
}

function catchAppError(fn: () => unknown): AppError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    return error as AppError;
  }
  throw new Error("expected an AppError, nothing was thrown");
}

function expectBadRequest(fn: () => unknown, code: string, httpStatus = 400): AppError {
  const error = catchAppError(fn);
  expect(error.code).toBe(code);
  expect(error.httpStatus).toBe(httpStatus);
  expect(error.kind).toBe("permanent");
  return error;
}

// ---------------------------------------------------------------------------------------------

describe("Goodreads 2025 export (24 columns)", () => {
  const parsed = parseLibraryExport(goodreads2025);
  const ref = reference(goodreads2025, goodreadsNames);

  it("is detected as Goodreads", () => {
    expect(goodreads2025.split(/\r?\n/)[0]?.split(",")).toHaveLength(24);
    expect(parsed.format).toBe("goodreads");
  });

  it("counts every data row", () => {
    expect(parsed.rows).toBe(countDataLines(goodreads2025));
    expect(parsed.rows).toBe(358); // the fixture's README: 358 books
    expect(parsed.rows).toBe(ref.rows);
    expect(parsed.rowsWithoutAuthor).toBe(0);
  });

  it("finds every distinct author and every mention", () => {
    expect(parsed.authors.map((a) => a.key).sort()).toEqual([...ref.distinct].sort());
    expect(parsed.authorMentions).toBe(ref.mentions);
    expect(parsed.duplicatesSkipped).toBe(ref.mentions - ref.distinct.size);
    expect(parsed.duplicatesSkipped).toBeGreaterThan(0);
    expectInvariants(parsed);
  });

  it("keeps first-seen order and records the first row", () => {
    expect(parsed.authors[0]).toEqual({ key: "peter frankopan", name: "Peter Frankopan", firstRow: 2 });
    expect(parsed.authors[1]?.name).toBe("Donald A. Norman");
  });

  it("keeps accents intact", () => {
    const [flow] = byName(parsed, "Mihály Csíkszentmihályi");
    expect(flow).toBeDefined();
    expect(flow?.name).toBe("Mihály Csíkszentmihályi".normalize("NFC"));
    expect(flow?.key).toBe("mihály csíkszentmihályi");
  });

  it('collapses "Tom  Chivers" (two rows) into one author displayed "Tom Chivers"', () => {
    expect(goodreads2025).toContain("Tom  Chivers");
    const chivers = parsed.authors.filter((a) => a.key === "tom chivers");
    expect(chivers).toEqual([{ key: "tom chivers", name: "Tom Chivers", firstRow: 12 }]);
    expect(parsed.authors.some((a) => a.name.includes("  "))).toBe(false);
  });

  it("includes additional authors", () => {
    expect(byName(parsed, "David Chivers")).toHaveLength(1);
    expect(byName(parsed, "Tom Griffiths")).toHaveLength(1);
    expect(byName(parsed, "Carl Siciliano")).toHaveLength(1); // last of a 34-name list
  });

  it("collects the distinct ISBN-13s", () => {
    expect(new Set(parsed.isbns)).toEqual(goodreadsIsbns(goodreads2025));
    expect(parsed.isbns[0]).toBe("9781408839973");
  });
});

describe("Goodreads 2019 export (31 columns)", () => {
  const parsed = parseLibraryExport(goodreads2019);
  const ref = reference(goodreads2019, goodreadsNames);

  it("is detected as Goodreads and counts every row", () => {
    expect(goodreads2019.split(/\r?\n/)[0]?.split(",")).toHaveLength(31);
    expect(parsed.format).toBe("goodreads");
    expect(parsed.rows).toBe(countDataLines(goodreads2019));
    expect(parsed.rows).toBe(ref.rows);
  });

  it("finds every distinct author and every mention", () => {
    expect(parsed.authors.map((a) => a.key).sort()).toEqual([...ref.distinct].sort());
    expect(parsed.authorMentions).toBe(ref.mentions);
    expect(parsed.duplicatesSkipped).toBe(ref.mentions - ref.distinct.size);
    expectInvariants(parsed);
  });

  it("splits Additional Authors on commas", () => {
    // Row 3: Kip S. Thorne, additional "Stephen Hawking, Frederick Seitz".
    expect(parsed.authors.slice(0, 4)).toEqual([
      { key: "richard dawkins", name: "Richard Dawkins", firstRow: 2 },
      { key: "kip s. thorne", name: "Kip S. Thorne", firstRow: 3 },
      { key: "stephen hawking", name: "Stephen Hawking", firstRow: 3 },
      { key: "frederick seitz", name: "Frederick Seitz", firstRow: 3 },
    ]);
  });

  it("collects the distinct ISBN-13s, falling back to ISBN when ISBN13 is not an ISBN", () => {
    expect(new Set(parsed.isbns)).toEqual(goodreadsIsbns(goodreads2019));
    // Row 82: ISBN13 ="0785342510591" is not an ISBN; ISBN ="0201510596" is.
    expect(goodreads2019).toContain('"=""0785342510591"""');
    expect(parsed.isbns).toContain("9780201510591");
    expect(parsed.isbns).not.toContain("0785342510591");
  });
});

describe("StoryGraph 2025 export", () => {
  const parsed = parseLibraryExport(storygraph2025);
  const ref = reference(storygraph2025, storygraphNames);

  it("is detected as StoryGraph and counts every row", () => {
    expect(storygraph2025).toContain("\r\n");
    expect(parsed.format).toBe("storygraph");
    expect(parsed.rows).toBe(countDataLines(storygraph2025));
    expect(parsed.rows).toBe(ref.rows);
  });

  it("finds every distinct author and every mention", () => {
    expect(parsed.authors.map((a) => a.key).sort()).toEqual([...ref.distinct].sort());
    expect(parsed.authorMentions).toBe(ref.mentions);
    expect(parsed.duplicatesSkipped).toBe(ref.mentions - ref.distinct.size);
    expectInvariants(parsed);
  });

  it("splits multi-author rows", () => {
    for (const name of [
      "A. E. Hotchner",
      "Paul Newman",
      "Edward S. Herman",
      "Noam Chomsky",
      "Tom Griffiths",
      "Brian Christian",
      "Marc Goedhart",
    ]) {
      expect(byName(parsed, name), name).toHaveLength(1);
    }
    expect(parsed.authors.some((a) => a.name.includes(","))).toBe(false);
  });

  it("does not warm contributors", () => {
    const authorKeys = new Set(parsed.authors.map((a) => a.key));
    let contributorsOnly = 0;
    for (const row of records(storygraph2025)) {
      const authors = new Set(storygraphNames(row).map(refKey));
      for (const contributor of (row.Contributors ?? "").split(",")) {
        const name = contributor.replace(/\([^)]*\)/g, "").trim();
        if (name === "" || authors.has(refKey(name))) continue;
        contributorsOnly++;
        expect(authorKeys.has(refKey(name)), name).toBe(false);
        expect(authorKeys.has(refKey(contributor)), contributor).toBe(false);
      }
    }
    expect(contributorsOnly).toBeGreaterThan(10);
    expect(byName(parsed, "Shvorne Marks")).toEqual([]);
    // Trevor Noah narrates his own book: he is there, once, as the author.
    expect(byName(parsed, "Trevor Noah")).toHaveLength(1);
  });

  it("keeps only ISBN/UID values that are valid ISBNs", () => {
    const values = records(storygraph2025).map((row) => (row["ISBN/UID"] ?? "").trim());
    const expected = new Set(values.filter(checkIsbn13));
    expect(values).toContain("8418897821"); // an ISBN-10 → 9788418897825
    expected.add("9788418897825");
    expect(new Set(parsed.isbns)).toEqual(expected);
    expect(parsed.isbns).not.toContain("B07MNWKF2M");
  });
});

describe("encodings and CSV syntax", () => {
  it("accepts a UTF-8 BOM before the header", () => {
    const withBom = parseLibraryExport(`\uFEFF${goodreads2025}`);
    expect(withBom).toEqual(parseLibraryExport(goodreads2025));
    const generic = parseLibraryExport("\uFEFFAuthor,Title\nAnn Author,Book\n");
    expect(generic.format).toBe("generic");
    expect(generic.authors.map((a) => a.name)).toEqual(["Ann Author"]);
  });

  it("gives the same result for LF, CRLF and CR line endings", () => {
    const lf = storygraph2025.replace(/\r\n/g, "\n");
    expect(lf).not.toContain("\r");
    const expected = parseLibraryExport(lf);
    expect(parseLibraryExport(lf.replace(/\n/g, "\r\n"))).toEqual(expected);
    expect(parseLibraryExport(lf.replace(/\n/g, "\r"))).toEqual(expected);
    expect(parseLibraryExport(goodreads2019.replace(/\n/g, "\r\n"))).toEqual(
      parseLibraryExport(goodreads2019),
    );
  });

  it("accepts mixed line endings", () => {
    const parsed = parseLibraryExport("Title,Author\r\nA,Ann\nB,Bob\rC,Cy\r\n");
    expect(parsed.rows).toBe(3);
    expect(parsed.authors.map((a) => a.name)).toEqual(["Ann", "Bob", "Cy"]);
  });

  it("keeps a quoted newline, comma and quote inside one field", () => {
    const csv = 'Title,Author\r\n"Line one\r\nline two, ""quoted""",Ann Author\r\nOther,Bob Writer\r\n';
    const parsed = parseLibraryExport(csv);
    expect(parsed.rows).toBe(2);
    expect(parsed.authors).toEqual([
      { key: "ann author", name: "Ann Author", firstRow: 2 },
      { key: "bob writer", name: "Bob Writer", firstRow: 3 },
    ]);
  });

  it("treats NFD and NFC spellings as one author, keeping the first spelling (NFC)", () => {
    const csv = "Title,Author\nA,Gue\u0301non\nB,Gu\u00e9non\nC,GUÉNON\n";
    const parsed = parseLibraryExport(csv);
    expect(parsed.authors).toEqual([{ key: "gu\u00e9non", name: "Gu\u00e9non", firstRow: 2 }]);
    expect(parsed.authorMentions).toBe(3);
    expect(parsed.duplicatesSkipped).toBe(2);
  });

  it("ignores blank records but counts them in row numbers", () => {
    const parsed = parseLibraryExport("Author\n\nAnn\n,\n  \nBob\n\n");
    expect(parsed.rows).toBe(2);
    expect(parsed.authors).toEqual([
      { key: "ann", name: "Ann", firstRow: 3 },
      { key: "bob", name: "Bob", firstRow: 6 },
    ]);
  });

  it("tolerates ragged rows", () => {
    const header = goodreads2025.split("\n")[0];
    const csv = `${header}\n1,Short row,Ann Author\n2,Long row,Bob Writer,"Writer, Bob",,"=""""","=""9780306406157""",0,0,P,B,1,2,3,,,,,,,,,,,extra,extra\n`;
    const parsed = parseLibraryExport(csv);
    expect(parsed.format).toBe("goodreads");
    expect(parsed.rows).toBe(2);
    expect(parsed.authors.map((a) => a.name)).toEqual(["Ann Author", "Bob Writer"]);
    expect(parsed.isbns).toEqual(["9780306406157"]);
  });

  it("counts rows without an author and skips blank author cells", () => {
    const parsed = parseLibraryExport("Title,Author\nA,\nB,Ann\nC,  \u00a0 \n");
    expect(parsed.rows).toBe(3);
    expect(parsed.rowsWithoutAuthor).toBe(2);
    expect(parsed.authorMentions).toBe(1);
  });
});

describe("format detection and generic CSVs", () => {
  it("reads a generic CSV with an upper-case AUTHORS header, split on commas", () => {
    const parsed = parseLibraryExport('TITLE,AUTHORS,ISBN\nBook,"Ann Author, Bob  Writer",0-306-40615-2\n');
    expect(parsed.format).toBe("generic");
    expect(parsed.authors.map((a) => a.name)).toEqual(["Ann Author", "Bob Writer"]);
    expect(parsed.isbns).toEqual(["9780306406157"]);
  });

  it("splits a generic authors cell on semicolons when it has any, keeping 'Last, First'", () => {
    const parsed = parseLibraryExport('authors\n"Dawkins, Richard; Sagan, Carl"\n"Ann & Bob"\n');
    expect(parsed.authors.map((a) => a.name)).toEqual(["Dawkins, Richard", "Sagan, Carl", "Ann & Bob"]);
  });

  it("never splits a generic single author column", () => {
    const parsed = parseLibraryExport('Title,Author\nX,"Dawkins, Richard"\n');
    expect(parsed.authors.map((a) => a.name)).toEqual(["Dawkins, Richard"]);
  });

  it("prefers the authors column over author", () => {
    const parsed = parseLibraryExport('author,authors\nAnn,"Bob, Cy"\n');
    expect(parsed.authors.map((a) => a.name)).toEqual(["Bob", "Cy"]);
  });

  it("matches headers after trimming, case-insensitively; the first of duplicate headers wins", () => {
    expect(parseLibraryExport("  Author  ,Title\nAnn,X\n").authors.map((a) => a.name)).toEqual(["Ann"]);
    expect(parseLibraryExport("Author,Author\nAnn,Bob\n").authors.map((a) => a.name)).toEqual(["Ann"]);
  });

  it("reads generic ISBN columns: isbn13, isbn or isbn/uid", () => {
    expect(parseLibraryExport("Author,ISBN13\nAnn,9780306406157\n").isbns).toEqual(["9780306406157"]);
    expect(parseLibraryExport("Author,Isbn/Uid\nAnn,0306406152\n").isbns).toEqual(["9780306406157"]);
    expect(parseLibraryExport("Author,isbn\nAnn,0306406153\n").isbns).toEqual([]);
    expect(parseLibraryExport("Author\nAnn\n").isbns).toEqual([]);
  });

  it("reads semicolon- and tab-separated files", () => {
    const semicolon = parseLibraryExport('Titel;Author;ISBN\n"Eins, zwei";Ann;0306406152\n');
    expect(semicolon.authors.map((a) => a.name)).toEqual(["Ann"]);
    expect(semicolon.isbns).toEqual(["9780306406157"]);
    const tab = parseLibraryExport("Title\tAuthors\nX\tAnn, Bob\n");
    expect(tab.authors.map((a) => a.name)).toEqual(["Ann", "Bob"]);
  });

  it("detects Goodreads from Author + Additional Authors + Book Id, falling back to ISBN", () => {
    const parsed = parseLibraryExport(
      'Book Id,Author,Additional Authors,ISBN\n1,Ann,"Bob, Cy",="0306406152"\n',
    );
    expect(parsed.format).toBe("goodreads");
    expect(parsed.authors.map((a) => a.name)).toEqual(["Ann", "Bob", "Cy"]);
    expect(parsed.isbns).toEqual(["9780306406157"]);
  });

  it("detects StoryGraph from Authors + Contributors", () => {
    const parsed = parseLibraryExport('Title,Authors,Contributors\nX,"Ann, Bob",Cy (Translator)\n');
    expect(parsed.format).toBe("storygraph");
    expect(parsed.authors.map((a) => a.name)).toEqual(["Ann", "Bob"]);
  });
});

describe("errors", () => {
  it("empty_csv for an empty or whitespace-only body", () => {
    for (const body of ["", "   \r\n\t\n", "\uFEFF", ",,,\n,,\n"]) {
      expectBadRequest(() => parseLibraryExport(body), "empty_csv");
    }
  });

  it("no_rows for a header without data rows", () => {
    expectBadRequest(() => parseLibraryExport("Title,Author\n"), "no_rows");
    expectBadRequest(() => parseLibraryExport("Title,Author\r\n\r\n,\r\n"), "no_rows");
    const header = goodreads2025.split("\n")[0] ?? "";
    expectBadRequest(() => parseLibraryExport(header), "no_rows");
  });

  it("no_author_column names what it looked for and what it found", () => {
    const error = expectBadRequest(
      () => parseLibraryExport("Title, Writer ,ISBN\nX,Y,Z\n"),
      "no_author_column",
    );
    for (const name of ["Author", "Authors", "author", "authors"])
      expect(error.message).toContain(`"${name}"`);
    expect(error.details).toEqual({
      columnsFound: ["Title", "Writer", "ISBN"],
      columnsLookedFor: ["Author", "Authors", "author", "authors"],
    });
  });

  it("no_author_column lists at most 30 headers", () => {
    const header = Array.from({ length: 40 }, (_, i) => `Col${i + 1}`).join(",");
    const error = expectBadRequest(
      () => parseLibraryExport(`${header}\n${"x,".repeat(39)}x\n`),
      "no_author_column",
    );
    const found = error.details?.columnsFound as string[];
    expect(found).toHaveLength(30);
    expect(found[0]).toBe("Col1");
    expect(found[29]).toBe("Col30");
  });

  it("unreadable_csv for an unterminated quote, with the row number (header = row 1)", () => {
    const error = expectBadRequest(
      () => parseLibraryExport('Title,Author\nok,Ann\n"broken,Bob\nmore,Cy\n'),
      "unreadable_csv",
    );
    expect(error.details?.row).toBe(3);
    expect(error.details?.message).toEqual(expect.any(String));
    expect(error.message).toContain("row 3");
  });

  it("unreadable_csv for a malformed quote", () => {
    const error = expectBadRequest(
      () => parseLibraryExport('Title,Author\n"abc"def,Ann\n'),
      "unreadable_csv",
    );
    expect(error.details?.row).toBe(2);
  });

  it("unreadable_csv for binary or UTF-16 bodies (NUL characters)", () => {
    const binary = expectBadRequest(() => parseLibraryExport("Title,Author\nA\0B,Ann\n"), "unreadable_csv");
    expect(binary.details?.row).toBe(2);
    const utf16 = "A\0u\0t\0h\0o\0r\0\n\0A\0n\0n\0\n\0";
    const error = expectBadRequest(() => parseLibraryExport(utf16), "unreadable_csv");
    expect(error.details?.row).toBe(1);
  });

  it("too_many_rows (413) with the limit and the real row count", () => {
    const error = expectBadRequest(
      () => parseLibraryExport(goodreads2025, { maxRows: 100 }),
      "too_many_rows",
      413,
    );
    expect(error.details).toEqual({ limit: 100, rows: countDataLines(goodreads2025) });
    const small = "Author\nAnn\nBob\nCy\n";
    expect(catchAppError(() => parseLibraryExport(small, { maxRows: 2 })).details).toEqual({
      limit: 2,
      rows: 3,
    });
    expect(parseLibraryExport(small, { maxRows: 3 }).rows).toBe(3);
  });

  it("no_authors when rows exist but none names an author", () => {
    expectBadRequest(() => parseLibraryExport("Title,Author\nA,\nB,  \n"), "no_authors");
    expectBadRequest(
      () => parseLibraryExport('Title,Authors,Contributors\nX,,"Cy (Translator)"\n'),
      "no_authors",
    );
  });
});
