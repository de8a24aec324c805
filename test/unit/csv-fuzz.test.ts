/**
 * Property-based tests (fast-check) of `parseLibraryExport` over generated CSVs: random bytes, token soup
 * (separators, quotes, CR/LF, BOM, NUL), well-formed exports, huge author cells, many columns, header-only
 * files and real exports with one mutated cell (generators: scripts/fuzz/bodies.ts).
 *
 * The seed is fixed so a failure reproduces; change FUZZ_SEED below to explore further.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { csvCases } from "../../scripts/fuzz/bodies";
import { AppError } from "../../src/errors";
import { type ParsedExport, parseLibraryExport } from "../../src/ingest/csv";
import { toIsbn13 } from "../../src/ingest/isbn";
import { authorKey, cleanAuthorName } from "../../src/ingest/normalize";
import goodreads2019 from "../fixtures/goodreads-2019.csv?raw";
import goodreads2025 from "../fixtures/goodreads-2025.csv?raw";
import storygraph2025 from "../fixtures/storygraph-2025.csv?raw";

const FUZZ_SEED = 20_260_417;
const fixtures = { goodreads: [goodreads2019, goodreads2025], storygraph: [storygraph2025] };
const csv = csvCases(fixtures);

type Outcome = { ok: true; parsed: ParsedExport } | { ok: false; error: unknown };

function parse(text: string, maxRows?: number): Outcome {
  try {
    return { ok: true, parsed: parseLibraryExport(text, maxRows === undefined ? {} : { maxRows }) };
  } catch (error) {
    return { ok: false, error };
  }
}

/** Throws (fails the property) unless the outcome is a result or a 4xx AppError. */
function expectResultOrClientError(outcome: Outcome): void {
  if (outcome.ok) return;
  const { error } = outcome;
  expect(error, `not an AppError: ${String(error)}`).toBeInstanceOf(AppError);
  const status = (error as AppError).httpStatus;
  expect(status, `${(error as AppError).code} has HTTP ${status}`).toBeGreaterThanOrEqual(400);
  expect(status).toBeLessThan(500);
}

/** The invariants every successful parse must hold. */
function expectConsistent(parsed: ParsedExport, maxRows?: number): void {
  expect(parsed.authors.length).toBeGreaterThan(0);
  const keys = new Set<string>();
  for (const author of parsed.authors) {
    expect(author.name.trim()).not.toBe("");
    expect(author.key).not.toBe("");
    expect(author.name).toBe(cleanAuthorName(author.name));
    expect(author.key).toBe(authorKey(author.name));
    expect(keys.has(author.key), `duplicate key ${JSON.stringify(author.key)}`).toBe(false);
    keys.add(author.key);
    expect(author.firstRow).toBeGreaterThanOrEqual(2);
  }
  // First-seen order: firstRow never decreases along the list.
  for (let i = 1; i < parsed.authors.length; i++) {
    expect(parsed.authors[i]?.firstRow).toBeGreaterThanOrEqual(parsed.authors[i - 1]?.firstRow ?? 0);
  }
  expect(parsed.rows).toBeGreaterThan(0);
  if (maxRows !== undefined) expect(parsed.rows).toBeLessThanOrEqual(maxRows);
  expect(parsed.rowsWithoutAuthor).toBeGreaterThanOrEqual(0);
  expect(parsed.rowsWithoutAuthor + parsed.rowsRejected).toBeLessThanOrEqual(parsed.rows);
  expect(parsed.rejections.length).toBe(Math.min(parsed.rowsRejected, 5));
  expect(parsed.authorMentions).toBeGreaterThanOrEqual(parsed.authors.length);
  // Each row with a usable author and no refused name contributes at least one mention.
  expect(parsed.authorMentions).toBeGreaterThanOrEqual(
    parsed.rows - parsed.rowsWithoutAuthor - parsed.rowsRejected,
  );
  // Every author that became a work item is within the limits.
  for (const author of parsed.authors) expect(author.name.length).toBeLessThanOrEqual(300);
  expect(parsed.duplicatesSkipped).toBe(parsed.authorMentions - parsed.authors.length);
  expect(new Set(parsed.isbns).size).toBe(parsed.isbns.length);
  for (const isbn of parsed.isbns) expect(toIsbn13(isbn)).toBe(isbn);
  expect(["goodreads", "storygraph", "generic"]).toContain(parsed.format);
}

describe("parseLibraryExport under generated input (fast-check)", () => {
  it("returns a consistent result or throws a 4xx AppError, never anything else", () => {
    fc.assert(
      fc.property(csv, fc.option(fc.integer({ min: 0, max: 30 }), { nil: undefined }), (input, maxRows) => {
        const outcome = parse(input.text, maxRows);
        expectResultOrClientError(outcome);
        if (outcome.ok) expectConsistent(outcome.parsed, maxRows);
      }),
      { seed: FUZZ_SEED, numRuns: 300 },
    );
  });

  it("gives the same answer with CRLF or lone CR line endings and with a BOM", () => {
    const lfOnly = csv.filter((c) => !c.text.includes("\r") && !c.text.startsWith("\uFEFF"));
    fc.assert(
      fc.property(lfOnly, fc.constantFrom("\r\n", "\r"), fc.boolean(), (input, eol, bom) => {
        const variant = `${bom ? "\uFEFF" : ""}${input.text.replaceAll("\n", eol)}`;
        const a = parse(input.text);
        const b = parse(variant);
        expectResultOrClientError(b);
        if (a.ok && b.ok) expect(b.parsed).toEqual(a.parsed);
        else expect(!a.ok && !b.ok, "one parsed, the other threw").toBe(true);
        if (!a.ok && !b.ok) expect((b.error as AppError).code).toBe((a.error as AppError).code);
      }),
      { seed: FUZZ_SEED, numRuns: 100 },
    );
  });

  it("reads every name of a generic `author` column exactly once (model check)", () => {
    // One name per cell, never split; the model: clean, skip blanks, dedupe by key in first-seen order.
    const name = fc.oneof(
      fc.constantFrom("Ada Writer", "ada  writer", "Dawkins, Richard", "Я Я", " ", "", 'Say "Hi"', "Zoë"),
      fc.string({ maxLength: 12 }),
    );
    fc.assert(
      fc.property(fc.array(name, { minLength: 1, maxLength: 25 }), (names) => {
        const text = `Title,Author\n${names.map((n, i) => `Book ${i},"${n.replace(/"/g, '""')}"`).join("\n")}\n`;
        const outcome = parse(text);
        expectResultOrClientError(outcome);
        const expected = new Map<string, string>();
        let mentions = 0;
        for (const raw of names) {
          const clean = cleanAuthorName(raw);
          if (clean === "") continue;
          mentions++;
          if (!expected.has(authorKey(clean))) expected.set(authorKey(clean), clean);
        }
        if (expected.size === 0) {
          expect(outcome.ok).toBe(false);
          return;
        }
        if (!outcome.ok) throw outcome.error;
        expect(outcome.parsed.authors.map((a) => [a.key, a.name])).toEqual([...expected]);
        expect(outcome.parsed.authorMentions).toBe(mentions);
        expect(outcome.parsed.rows).toBe(names.length);
      }),
      { seed: FUZZ_SEED, numRuns: 100 },
    );
  });
});
