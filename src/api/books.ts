import { Hono } from "hono";
import { z } from "zod";
import { readBookByIsbn, searchBooksByTitle } from "../cache/reader";
import { AppError } from "../errors";
import { parseIsbnStrict } from "../ingest/isbn";
import { recordCacheOutcome } from "./cache-outcome";
import type { AppEnv } from "./context";
import { validate } from "./validation";

const ISBN_PROBLEMS: Record<string, string> = {
  empty: "the ISBN is empty",
  length: "an ISBN has 10 or 13 digits",
  characters: "an ISBN holds digits (and a final X for ISBN-10) and hyphens only",
  check_digit: "the ISBN's check digit is wrong",
  prefix: "an ISBN-13 starts with 978 or 979",
};

/** Parses an ISBN-10 or -13 (hyphens allowed) into an ISBN-13, or a 400 that says what is wrong. */
export function requireIsbn13(raw: string): string {
  const parsed = parseIsbnStrict(raw);
  if (parsed.ok) return parsed.isbn13;
  throw new AppError({
    code: "invalid_isbn",
    message: `invalid ISBN "${raw}": ${ISBN_PROBLEMS[parsed.reason] ?? parsed.reason}`,
    httpStatus: 400,
    kind: "permanent",
    details: { isbn: raw, reason: parsed.reason },
  });
}

const isbnParam = z.object({ isbn: z.string().min(1).max(32) });
const searchQuery = z.object({
  title: z.string().trim().min(1, "title is required").max(300),
  author: z.string().trim().min(1).max(300).optional(),
});

export const booksApi = new Hono<AppEnv>()
  .get("/isbn/:isbn", validate("param", isbnParam), async (c) => {
    const isbn13 = requireIsbn13(c.req.valid("param").isbn);
    const { value, hit } = await readBookByIsbn(c.var.reader, isbn13);
    recordCacheOutcome(c, "books.isbn", hit);
    c.header("X-Cache", hit ? "HIT" : "MISS");
    if (!value) {
      throw new AppError({
        code: "book_not_found",
        message: `no book with ISBN ${isbn13} in the cache or the sources`,
        httpStatus: 404,
        kind: "permanent",
        details: { isbn13 },
      });
    }
    return c.json({ isbn13, book: value });
  })
  .get("/search", validate("query", searchQuery), async (c) => {
    const { title, author } = c.req.valid("query");
    const { value, hit } = await searchBooksByTitle(c.var.reader, title, author);
    recordCacheOutcome(c, "books.search", hit);
    c.header("X-Cache", hit ? "HIT" : "MISS");
    return c.json({ query: { title, author: author ?? null }, count: value.length, results: value });
  });
