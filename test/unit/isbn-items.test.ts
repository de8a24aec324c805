import { describe, expect, it } from "vitest";
import { parseLibraryExport } from "../../src/ingest/csv";
import { isbnItemKey, isbnOfItemKey, readIsbnCell } from "../../src/ingest/isbn";
import { authorNameProblem } from "../../src/ingest/limits";
import goodreads2019 from "../fixtures/goodreads-2019.csv?raw";
import goodreads2025 from "../fixtures/goodreads-2025.csv?raw";
import storygraph2025 from "../fixtures/storygraph-2025.csv?raw";

describe("readIsbnCell: one cell of an ISBN column", () => {
  it('reads Goodreads\' formula-wrapped ISBNs and treats ="" as empty', () => {
    expect(readIsbnCell('="9781408839973"')).toEqual({ kind: "isbn", isbn13: "9781408839973" });
    expect(readIsbnCell('="1408839970"')).toEqual({ kind: "isbn", isbn13: "9781408839973" });
    expect(readIsbnCell('=""')).toEqual({ kind: "empty" });
    expect(readIsbnCell("")).toEqual({ kind: "empty" });
  });

  it("names the unusable shapes: Excel's scientific notation, ASINs, lengths, prefixes, check digits", () => {
    expect(readIsbnCell("9.78053E+12")).toEqual({ kind: "unusable", reason: "scientific_notation" });
    expect(readIsbnCell('="9.78053E+12"')).toEqual({ kind: "unusable", reason: "scientific_notation" });
    expect(readIsbnCell("B0BJ2YTGJR")).toEqual({ kind: "unusable", reason: "asin" });
    expect(readIsbnCell("b07mnwkf2m")).toEqual({ kind: "unusable", reason: "asin" });
    expect(readIsbnCell("38549081")).toEqual({ kind: "unusable", reason: "length" });
    expect(readIsbnCell('="0785342510591"')).toEqual({ kind: "unusable", reason: "prefix" });
    expect(readIsbnCell("9781408839974")).toEqual({ kind: "unusable", reason: "check_digit" });
    expect(readIsbnCell("1408839971")).toEqual({ kind: "unusable", reason: "check_digit" });
  });

  it("keys ISBN items apart from authors, and refuses an author name that would collide", () => {
    expect(isbnItemKey("9781408839973")).toBe("isbn:9781408839973");
    expect(isbnOfItemKey("isbn:9781408839973")).toBe("9781408839973");
    expect(isbnOfItemKey("peter frankopan")).toBeNull();
    expect(isbnOfItemKey("isbn:12345")).toBeNull();
    expect(authorNameProblem("ISBN:9781408839973")).not.toBeNull();
    expect(authorNameProblem("Isaac Asimov")).toBeNull();
  });
});

describe("an export's ISBN work items, per format (the bundled real exports)", () => {
  it("Goodreads 2025: ISBN13 else ISBN, one item per distinct ISBN-13, empty cells not counted", () => {
    const parsed = parseLibraryExport(goodreads2025);
    // 302 rows have a usable ISBN (checked independently of this parser); the other 56 are `=""`.
    expect(parsed.isbns).toHaveLength(302);
    expect(new Set(parsed.isbns).size).toBe(302);
    expect(parsed.isbns[0]).toBe("9781408839973");
    expect(parsed.isbnsUnusable).toEqual({ count: 0, examples: [] });
  });

  it("Goodreads 2019: an EAN-13 without 978/979 in ISBN13 falls back to the row's valid ISBN-10", () => {
    const parsed = parseLibraryExport(goodreads2019);
    expect(parsed.isbns).toHaveLength(214);
    // Row "0201510596" / "0785342510591": the ISBN-10 wins, converted.
    expect(parsed.isbns).toContain("9780201510591");
    expect(parsed.isbnsUnusable.count).toBe(0);
  });

  it("StoryGraph: ISBN/UID when it is an ISBN; short numbers and ASINs are counted unusable", () => {
    const parsed = parseLibraryExport(storygraph2025);
    expect(parsed.isbns).toHaveLength(179);
    expect(parsed.isbnsUnusable).toEqual({
      count: 3,
      examples: [
        { row: 73, value: "38549081", reason: "length" },
        { row: 153, value: "140143505", reason: "length" },
        { row: 192, value: "B07MNWKF2M", reason: "asin" },
      ],
    });
  });

  it("Goodreads opened in Excel: scientific notation is unusable, the row's other ISBN still counts", () => {
    const csv = [
      "Book Id,Title,Author,Additional Authors,ISBN,ISBN13",
      '1,A,Ann Author,,="",9.78053E+12',
      '2,B,Ann Author,,="0141026162",9.78014E+12',
      "3,C,Ann Author,,,",
    ].join("\n");
    const parsed = parseLibraryExport(csv);
    expect(parsed.format).toBe("goodreads");
    expect(parsed.isbns).toEqual(["9780141026169"]);
    expect(parsed.isbnsUnusable).toEqual({
      count: 1,
      examples: [{ row: 2, value: "9.78053E+12", reason: "scientific_notation" }],
    });
  });

  it("generic: isbn13, isbn and isbn10 columns, duplicates by ISBN-13 merged (ISBN-10 = its ISBN-13)", () => {
    const csv = [
      "title,author,isbn10",
      "A,Ann,0141026162",
      "B,Bob,978-0-14-102616-9",
      "C,Cy,B0BJ2YTGJR",
    ].join("\n");
    const parsed = parseLibraryExport(csv);
    expect(parsed.isbns).toEqual(["9780141026169"]);
    expect(parsed.isbnsUnusable.count).toBe(1);
    expect(parsed.isbnsUnusable.examples[0]?.reason).toBe("asin");
  });
});
