import { Hono } from "hono";
import { z } from "zod";
import { readAuthorWorks } from "../cache/reader";
import { AppError } from "../errors";
import { recordCacheOutcome } from "./cache-outcome";
import type { AppEnv } from "./context";
import { validate } from "./validation";

const authorParam = z.object({ name: z.string().trim().min(1, "author name is required").max(300) });

export const authorsApi = new Hono<AppEnv>().get(
  "/:name/works",
  validate("param", authorParam),
  async (c) => {
    const { name } = c.req.valid("param");
    const { value, hit } = await readAuthorWorks(c.var.reader, name);
    recordCacheOutcome(c, "authors.works", hit);
    c.header("X-Cache", hit ? "HIT" : "MISS");
    if (value.works.length === 0) {
      throw new AppError({
        code: "author_not_found",
        message: `no works found for author "${name}"`,
        httpStatus: 404,
        kind: "permanent",
      });
    }
    return c.json({
      author: value.author,
      count: value.works.length,
      updatedAt: value.updatedAt,
      works: value.works,
    });
  },
);
