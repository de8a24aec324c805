import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { KV_KEY_MAX_BYTES, keyFits } from "../../src/cache/keys";

const utf8Bytes = (s: string) => new TextEncoder().encode(s).byteLength;

describe("keyFits", () => {
  it("agrees with KV's rule (1 to 512 bytes of UTF-8) for any string, short-cut or not", () => {
    // Characters of 1, 2, 3 and 4 UTF-8 bytes (the last a surrogate pair), at lengths on both sides of 512/3.
    const char = fc.constantFrom("a", "é", "語", "𝄞");
    fc.assert(
      fc.property(fc.array(char, { minLength: 0, maxLength: 300 }), (chars) => {
        const key = chars.join("");
        expect(keyFits(key)).toBe(key.length > 0 && utf8Bytes(key) <= KV_KEY_MAX_BYTES);
      }),
      { numRuns: 2000 },
    );
  });

  it("takes the byte count, not the length, past the short cut", () => {
    expect(keyFits("a".repeat(512))).toBe(true);
    expect(keyFits("a".repeat(513))).toBe(false);
    expect(keyFits("語".repeat(170))).toBe(true); // 510 bytes
    expect(keyFits("語".repeat(171))).toBe(false); // 513 bytes
    expect(keyFits("")).toBe(false);
  });
});
