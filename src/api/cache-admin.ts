import { Hono } from "hono";
import { z } from "zod";
import { invalidateAuthor, invalidateBook } from "../cache/reader";
import { requireToken } from "./auth";
import { requireIsbn13 } from "./books";
import type { AppEnv } from "./context";
import { validate } from "./validation";

const authorParam = z.object({ name: z.string().trim().min(1).max(300) });
const isbnParam = z.object({ isbn: z.string().min(1).max(32) });

/** Invalidation: the next read misses and refills; the next upload warms the author again. */
export const cacheAdminApi = new Hono<AppEnv>()
  .use(requireToken)
  .delete("/authors/:name", validate("param", authorParam), async (c) => {
    const { name } = c.req.valid("param");
    const deleted = await invalidateAuthor(c.var.cache, name);
    return c.json({ author: name, deleted });
  })
  .delete("/books/isbn/:isbn", validate("param", isbnParam), async (c) => {
    const isbn13 = requireIsbn13(c.req.valid("param").isbn);
    const { keys, found } = await invalidateBook(c.var.cache, isbn13);
    return c.json({ isbn13, found, deleted: keys });
  });
