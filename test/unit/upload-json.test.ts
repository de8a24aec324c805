import { describe, expect, it } from "vitest";
import { AppError } from "../../src/errors";
import { JsonUploadScanner } from "../../src/ingest/upload-json";

const encoder = new TextEncoder();

/** Scans `body` cut into pieces at `cuts`, as a network might deliver it, draining after each piece. */
function scan(body: string, cuts: number[] = [], limit = 1024) {
  const bytes = encoder.encode(body);
  const scanner = new JsonUploadScanner(limit);
  const pieces: number[] = [];
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    scanner.write(bytes.subarray(from, cut));
    pieces.push(...scanner.drain());
    from = cut;
  }
  pieces.push(...scanner.finish().tail);
  const { csvSeen, fields } = scanner.result();
  return { csv: csvSeen ? new Uint8Array(pieces) : null, fields };
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (error instanceof AppError) return error.code;
    throw error;
  }
  return "no error";
}

describe("JsonUploadScanner", () => {
  // Every byte value, so every base64 character and both partial-quad endings occur.
  const file = Uint8Array.from({ length: 257 }, (_, i) => (i * 7) % 256);
  const b64 = btoa(String.fromCharCode(...file));

  it("decodes the csv and parses the other fields, wherever the chunks are cut", () => {
    const body = ` { "maxDepth" : 1, "csv": "${b64}", "priority":"high", "filename": "a \\"b\\".csv", "x": {"y":[1,"}"]} } `;
    for (let cut = 0; cut <= body.length; cut++) {
      const { csv, fields } = scan(body, [cut, Math.min(body.length, cut + 3)]);
      expect(csv).toEqual(file);
      expect(fields).toEqual({ maxDepth: 1, priority: "high", filename: 'a "b".csv', x: { y: [1, "}"] } });
    }
  });

  it("takes the escapes JSON encoders put in base64: \\/, \\n line wraps, \\u00XX; and unpadded and URL-safe text", () => {
    const wrapped = b64.replace(/\//g, "\\/").replace(/(.{76})/g, "$1\\n");
    expect(scan(`{"csv":"${wrapped}"}`, [13, 14, 15]).csv).toEqual(file);
    expect(scan(`{"csv":"\\u0059\\u0051=="}`).csv).toEqual(encoder.encode("a"));
    expect(scan(`{"csv":"YWI"}`).csv).toEqual(encoder.encode("ab"));
    expect(scan(`{"csv":"${btoa("\xfb\xff")}"}`.replace("+", "-").replace("/", "_")).csv).toEqual(
      new Uint8Array([0xfb, 0xff]),
    );
  });

  it("refuses what is not base64 or not JSON", () => {
    expect(code(() => scan('{"csv":"YQ=a"}'))).toBe("invalid_base64");
    expect(code(() => scan('{"csv":"Y"}'))).toBe("invalid_base64");
    expect(code(() => scan('{"csv":"é"}'))).toBe("invalid_base64");
    expect(code(() => scan('{"csv":"\\"YQ"}'))).toBe("invalid_base64");
    expect(code(() => scan('{"csv":"YQ=="'))).toBe("invalid_json");
    expect(code(() => scan('{"csv":"YQ==",}'))).toBe("invalid_json");
    expect(code(() => scan('{"maxDepth":01x}'))).toBe("invalid_json");
    expect(code(() => scan("[1]"))).toBe("invalid_json");
    expect(code(() => scan('{"csv":"YQ==","csv":"YQ=="}'))).toBe("invalid_request");
  });

  it("refuses as soon as the decoded file passes the limit, and keeps small fields small", () => {
    const scanner = new JsonUploadScanner(30);
    scanner.write(encoder.encode('{"csv":"'));
    expect(code(() => scanner.write(encoder.encode("QUFB".repeat(11))))).toBe("payload_too_large");
    expect(code(() => scan(`{"filename":"${"x".repeat(2000)}"}`))).toBe("invalid_request");
    expect(code(() => scan(`{"maxDepth":"${"1".repeat(2000)}"}`))).toBe("invalid_option");
  });
});
