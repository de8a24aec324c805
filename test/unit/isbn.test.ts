import Papa from "papaparse";
import { describe, expect, it } from "vitest";
import {
  cleanIsbn,
  isbn10To13,
  isbn13To10,
  isValidIsbn10,
  isValidIsbn13,
  parseIsbnStrict,
  toIsbn13,
} from "../../src/ingest/isbn";
import goodreads2019 from "../fixtures/goodreads-2019.csv?raw";
import goodreads2025 from "../fixtures/goodreads-2025.csv?raw";

/**
 * (ISBN, ISBN13) pairs Goodreads wrote on the same row for the same book (same nine digits after
 * 978): Goodreads computed both check digits, an independent source of truth. Some rows pair
 * different editions or a non-ISBN barcode; those are left out.
 */
function goodreadsPairs(csv: string): Array<[string, string]> {
  const parsed = Papa.parse<Record<string, string>>(csv, { header: true, skipEmptyLines: "greedy" });
  const unwrap = (cell: string | undefined) => (cell ?? "").replace(/^="/, "").replace(/"$/, "");
  return parsed.data
    .map((row): [string, string] => [unwrap(row.ISBN), unwrap(row.ISBN13)])
    .filter(([isbn10, isbn13]) => isbn10 !== "" && isbn13 === `978${isbn10.slice(0, 9)}${isbn13.slice(12)}`);
}

describe("cleanIsbn", () => {
  it('strips Goodreads\' ="..." wrapping', () => {
    expect(cleanIsbn('="0141026162"')).toBe("0141026162");
    expect(cleanIsbn('="9780141026169"')).toBe("9780141026169");
  });

  it("returns null for empty values", () => {
    expect(cleanIsbn('=""')).toBeNull();
    expect(cleanIsbn("")).toBeNull();
    expect(cleanIsbn("  - ")).toBeNull();
    expect(cleanIsbn(undefined)).toBeNull();
    expect(cleanIsbn(null)).toBeNull();
  });

  it("removes hyphens, spaces and an ISBN label, and upper-cases x", () => {
    expect(cleanIsbn("0-8044-2957-x")).toBe("080442957X");
    expect(cleanIsbn(" 978 0 306 40615 7 ")).toBe("9780306406157");
    expect(cleanIsbn("ISBN-13: 978-0-306-40615-7")).toBe("9780306406157");
    expect(cleanIsbn("978\u20110306\u201040615\u00a07")).toBe("9780306406157");
  });

  it("does not validate", () => {
    expect(cleanIsbn("B07MNWKF2M")).toBe("B07MNWKF2M");
  });
});

describe("check digits", () => {
  it("accepts valid ISBN-10s, including an X check digit", () => {
    expect(isValidIsbn10("0306406152")).toBe(true);
    expect(isValidIsbn10("080442957X")).toBe(true);
    expect(isValidIsbn10("152911330X")).toBe(true);
  });

  it("rejects bad ISBN-10s", () => {
    expect(isValidIsbn10("0306406153")).toBe(false);
    expect(isValidIsbn10("0804429579")).toBe(false);
    expect(isValidIsbn10("X306406152")).toBe(false);
    expect(isValidIsbn10("030640615")).toBe(false);
    expect(isValidIsbn10("0-306-40615-2")).toBe(false); // bare strings only
  });

  it("accepts valid ISBN-13s with 978 and 979 prefixes", () => {
    expect(isValidIsbn13("9780306406157")).toBe(true);
    expect(isValidIsbn13("9791090636071")).toBe(true);
  });

  it("rejects bad ISBN-13s and non-book EAN-13s", () => {
    expect(isValidIsbn13("9780306406158")).toBe(false);
    expect(isValidIsbn13("4006381333931")).toBe(false); // a valid EAN-13, not an ISBN
    expect(isValidIsbn13("978030640615")).toBe(false);
  });
});

describe("conversion", () => {
  it("converts ISBN-10 to ISBN-13 as Goodreads does on every row of both exports", () => {
    const pairs = [...goodreadsPairs(goodreads2025), ...goodreadsPairs(goodreads2019)];
    expect(pairs.length).toBeGreaterThan(400);
    expect(pairs.some(([isbn10]) => isbn10.endsWith("X"))).toBe(true);
    for (const [isbn10, isbn13] of pairs) {
      expect(isbn10To13(isbn10), isbn10).toBe(isbn13);
      expect(isbn13To10(isbn13), isbn13).toBe(isbn10);
    }
  });

  it("converts an ISBN-10 with an X check digit", () => {
    // Goodreads 2025 row: ISBN ="152911330X", ISBN13 ="9781529113303".
    expect(isbn10To13("152911330X")).toBe("9781529113303");
    expect(isbn13To10("9781529113303")).toBe("152911330X");
    expect(isbn10To13("080442957X")).toBe("9780804429573");
  });

  it("returns null for invalid input", () => {
    expect(isbn10To13("0306406153")).toBeNull();
    expect(isbn13To10("9780306406158")).toBeNull();
  });

  it("has no ISBN-10 for 979 numbers", () => {
    expect(isbn13To10("9791090636071")).toBeNull();
  });
});

describe("toIsbn13", () => {
  it("accepts ISBN-10 and ISBN-13 with hyphens or wrapping", () => {
    expect(toIsbn13("0-306-40615-2")).toBe("9780306406157");
    expect(toIsbn13("978-0-306-40615-7")).toBe("9780306406157");
    expect(toIsbn13('="0141026162"')).toBe("9780141026169");
    expect(toIsbn13("0-8044-2957-x")).toBe("9780804429573");
  });

  it("returns null for bad check digits, wrong lengths, ASINs and blanks", () => {
    expect(toIsbn13("0-306-40615-3")).toBeNull();
    expect(toIsbn13("978-0-306-40615-8")).toBeNull();
    expect(toIsbn13("140143505")).toBeNull(); // StoryGraph: an ISBN-10 that lost its leading zero
    expect(toIsbn13("B07MNWKF2M")).toBeNull();
    expect(toIsbn13('=""')).toBeNull();
    expect(toIsbn13("4006381333931")).toBeNull();
  });
});

describe("parseIsbnStrict", () => {
  it("returns the ISBN-13 when valid", () => {
    expect(parseIsbnStrict("0306406152")).toEqual({ ok: true, isbn13: "9780306406157" });
    expect(parseIsbnStrict("979-10-90636-07-1")).toEqual({ ok: true, isbn13: "9791090636071" });
  });

  it("names the problem", () => {
    expect(parseIsbnStrict("")).toEqual({ ok: false, reason: "empty" });
    expect(parseIsbnStrict(" - ")).toEqual({ ok: false, reason: "empty" });
    expect(parseIsbnStrict('=""')).toEqual({ ok: false, reason: "empty" });
    expect(parseIsbnStrict("12345")).toEqual({ ok: false, reason: "length" });
    expect(parseIsbnStrict("97803064061")).toEqual({ ok: false, reason: "length" });
    expect(parseIsbnStrict("97803064061570")).toEqual({ ok: false, reason: "length" });
    expect(parseIsbnStrict("0306A06152")).toEqual({ ok: false, reason: "characters" });
    expect(parseIsbnStrict("X306406152")).toEqual({ ok: false, reason: "characters" });
    expect(parseIsbnStrict("978030640615X")).toEqual({ ok: false, reason: "characters" });
    expect(parseIsbnStrict("B07MNWKF2M")).toEqual({ ok: false, reason: "characters" });
    expect(parseIsbnStrict("0306406153")).toEqual({ ok: false, reason: "check_digit" });
    expect(parseIsbnStrict("9780306406158")).toEqual({ ok: false, reason: "check_digit" });
    expect(parseIsbnStrict("4006381333931")).toEqual({ ok: false, reason: "prefix" });
  });
});
