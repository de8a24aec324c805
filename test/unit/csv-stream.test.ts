/**
 * Uploads are parsed as they arrive, in whatever chunks the network delivers. Property: reading a file
 * through `readExport` cut at any places (inside a quoted field, a CRLF, a multi-byte character or the BOM)
 * gives exactly what parsing it whole gives, error or result.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { csvCases } from "../../scripts/fuzz/bodies";
import { AppError } from "../../src/errors";
import { parseLibraryExport } from "../../src/ingest/csv";
import { readExport } from "../../src/ingest/read-export";
import goodreads2025 from "../fixtures/goodreads-2025.csv?raw";
import storygraph2025 from "../fixtures/storygraph-2025.csv?raw";

const FUZZ_SEED = 20_261_201;
const fixtures = { goodreads: [goodreads2025], storygraph: [storygraph2025] };
const meta = { options: { maxDepth: 2, priority: "normal" as const }, filename: null };

function outcome(run: () => unknown) {
  try {
    return { ok: true, value: run() };
  } catch (error) {
    if (error instanceof AppError) return { ok: false, code: error.code };
    throw error;
  }
}

async function streamed(bytes: Uint8Array, cuts: number[]) {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  async function* chunks() {
    let from = 0;
    for (const cut of [...points, bytes.length]) {
      if (cut > from) yield bytes.slice(from, cut);
      from = cut;
    }
  }
  try {
    const read = await readExport({ chunks: chunks(), meta: () => meta }, { maxRows: 200 });
    return { ok: true, value: read.parsed };
  } catch (error) {
    if (error instanceof AppError) return { ok: false, code: error.code };
    throw error;
  }
}

describe("a streamed upload parses as if it were whole", () => {
  it("any chunking of any generated CSV gives the same result or the same error", async () => {
    const text = csvCases(fixtures).map((c) => c.text);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          text,
          text.map((t) => `\uFEFF${t.replace(/\n/g, "\r\n")}`),
        ),
        fc.array(fc.nat(), { maxLength: 12 }),
        async (csv, cuts) => {
          // The file is bytes: compare with the text those bytes decode to (lone surrogates become U+FFFD).
          const bytes = new TextEncoder().encode(csv);
          const text = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true }).decode(bytes);
          const whole = outcome(() => parseLibraryExport(text, { maxRows: 200 }));
          expect(await streamed(bytes, cuts)).toEqual(whole);
        },
      ),
      { seed: FUZZ_SEED, numRuns: 300 },
    );
  });

  it("cuts inside a CRLF, a quoted newline and a multi-byte name change nothing", async () => {
    const csv = '\uFEFFTitle,Author\r\n"A\r\nlong title",Mihály Csíkszentmihályi\r\nB,Я Автор\r\n';
    const bytes = new TextEncoder().encode(csv);
    const whole = outcome(() => parseLibraryExport(csv));
    for (let cut = 0; cut <= bytes.length; cut++) {
      expect(await streamed(bytes, [cut, cut + 1])).toEqual(whole);
    }
    expect(whole).toMatchObject({
      ok: true,
      value: { rows: 2, authors: [{ firstRow: 2 }, { firstRow: 3 }] },
    });
  });

  it("refuses a row longer than 1 MiB as it streams, without holding the rest", async () => {
    const bytes = new TextEncoder().encode(`Title,Author\nA,"${"x".repeat(1_100_000)}`);
    expect(await streamed(bytes, [70_000, 140_000, 700_000])).toEqual({ ok: false, code: "row_too_long" });
  });

  it("hashes the file and options like the one-piece digest idempotency relies on", async () => {
    const bytes = new TextEncoder().encode("Title,Author\nA,B\n");
    async function* one() {
      yield bytes;
    }
    const read = await readExport({ chunks: one(), meta: () => meta }, {});
    const joined = new Uint8Array([
      ...bytes,
      0,
      ...new TextEncoder().encode("2"),
      0,
      ...new TextEncoder().encode("normal"),
      0,
    ]);
    const expected = [...new Uint8Array(await crypto.subtle.digest("SHA-256", joined))]
      .map((b) => b.toString(16).padStart(2, "0"))
      .join("");
    expect(read.requestHash).toBe(expected);
  });
});
