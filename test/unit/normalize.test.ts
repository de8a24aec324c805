import { describe, expect, it } from "vitest";
import { authorKey, cleanAuthorName, normalizeTitle } from "../../src/ingest/normalize";

describe("authorKey", () => {
  it("collapses whitespace runs and case-folds", () => {
    expect(authorKey("Tom  Chivers")).toBe("tom chivers");
    expect(authorKey("  Tom \t Chivers\n")).toBe("tom chivers");
    expect(authorKey("TOM CHIVERS")).toBe("tom chivers");
  });

  it("treats NBSP and other Unicode spaces as whitespace", () => {
    expect(authorKey("Tom\u00a0Chivers")).toBe("tom chivers");
    expect(authorKey("Tom\u2009\u3000Chivers")).toBe("tom chivers");
  });

  it("gives NFD and NFC spellings the same key, in NFC", () => {
    const nfd = "Gue\u0301non";
    const nfc = "Gu\u00e9non";
    expect(nfd).not.toBe(nfc);
    expect(authorKey(nfd)).toBe(authorKey(nfc));
    expect(authorKey(nfd)).toBe("gu\u00e9non");
  });

  it("keeps accents significant", () => {
    expect(authorKey("Mihály Csíkszentmihályi")).toBe("mihály csíkszentmihályi");
    expect(authorKey("Mihály Csíkszentmihályi")).not.toBe(authorKey("Mihaly Csikszentmihalyi"));
  });

  it("lower-cases without locale tailoring and stays NFC", () => {
    // Locale-independent mapping: "I" → "i" (not Turkish dotless "ı"); "ß" is not expanded.
    expect(authorKey("IRIS Straße")).toBe("iris straße");
    const key = authorKey("İlhan");
    expect(key).toBe(key.normalize("NFC"));
    expect(authorKey("I\u0307lhan")).toBe(key);
  });

  it("is idempotent", () => {
    const key = authorKey("  Brian  Christian ");
    expect(authorKey(key)).toBe(key);
  });
});

describe("cleanAuthorName", () => {
  it("trims and collapses whitespace but keeps case", () => {
    expect(cleanAuthorName(" Tom  Chivers ")).toBe("Tom Chivers");
    expect(cleanAuthorName("Tom\u00a0\u00a0Chivers")).toBe("Tom Chivers");
  });

  it("composes to NFC", () => {
    const cleaned = cleanAuthorName("Gue\u0301non");
    expect(cleaned).toBe("Gu\u00e9non");
    expect(cleaned.length).toBe(6);
  });

  it("returns an empty string for blanks", () => {
    expect(cleanAuthorName(" \t\u00a0")).toBe("");
  });
});

describe("normalizeTitle", () => {
  it("lower-cases and turns punctuation runs into single spaces", () => {
    expect(normalizeTitle("The Silk Roads: A New History of the World")).toBe(
      "the silk roads a new history of the world",
    );
    expect(normalizeTitle("Tomorrow, and Tomorrow, and Tomorrow")).toBe("tomorrow and tomorrow and tomorrow");
    expect(normalizeTitle("  --Hello---World!!  ")).toBe("hello world");
  });

  it("removes accents, for NFC and NFD input alike", () => {
    expect(normalizeTitle("Café Society")).toBe("cafe society");
    expect(normalizeTitle("Cafe\u0301 Society")).toBe("cafe society");
    expect(normalizeTitle("Min kamp 1: Knausgård")).toBe("min kamp 1 knausgard");
  });

  it("applies compatibility decomposition (ligatures, full-width digits)", () => {
    expect(normalizeTitle("The \ufb01rst")).toBe("the first");
    expect(normalizeTitle("１Q８４")).toBe("1q84");
  });

  it("keeps letters and digits of any script", () => {
    expect(normalizeTitle("Мастер и Маргарита")).toBe("мастер и маргарита");
    expect(normalizeTitle("ノルウェイの森")).toBe("ノルウェイの森");
    expect(normalizeTitle("1Q84")).toBe("1q84");
  });

  it("does not strip subtitles or series", () => {
    expect(normalizeTitle("Dune (Dune #1)")).toBe("dune dune 1");
  });

  it("returns an empty string for punctuation-only titles", () => {
    expect(normalizeTitle(" ?!… ")).toBe("");
  });

  it("is idempotent", () => {
    const once = normalizeTitle("El cielo es azul, la tierra blanca");
    expect(normalizeTitle(once)).toBe(once);
  });
});

describe("authorKey: initials", () => {
  it("spaces initials one way, so the upload and Open Library's spelling are one author", () => {
    expect(authorKey("A.A. Milne")).toBe("a. a. milne");
    expect(authorKey("A. A. Milne")).toBe(authorKey("A.A. Milne"));
    expect(authorKey("J.R.R. Tolkien")).toBe(authorKey("J. R. R. Tolkien"));
    expect(authorKey("a.a.  milne")).toBe(authorKey("A. A. Milne"));
    // Idempotent, and a period before a space or at the end is left alone.
    expect(authorKey(authorKey("J.R.R. Tolkien"))).toBe("j. r. r. tolkien");
    expect(authorKey("Martin Luther King Jr.")).toBe("martin luther king jr.");
  });
});
