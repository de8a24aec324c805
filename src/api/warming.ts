import { Hono } from "hono";
import { z } from "zod";
import { badRequest } from "../errors";
import { acceptUpload } from "./accept-upload";
import { requireToken } from "./auth";
import type { AppEnv } from "./context";
import { validate } from "./validation";

const idempotencyHeader = z.object({
  "content-type": z.string().optional(),
  "idempotency-key": z.string().min(1).max(200).optional(),
});

/**
 * The original upload endpoint, kept for clients that still post the JSON shape
 * `{ "csv": "<base64>", "maxDepth": 2, "priority": "normal" }`. Same job, same response as POST /api/jobs.
 */
export const warmingApi = new Hono<AppEnv>().post(
  "/upload",
  requireToken,
  validate("header", idempotencyHeader),
  async (c) => {
    const contentType = c.req.valid("header")["content-type"] ?? "";
    if (!contentType.toLowerCase().startsWith("application/json")) {
      throw badRequest(
        "unsupported_media_type",
        "POST /api/warming/upload takes application/json { csv: <base64>, maxDepth, priority }; use POST /api/jobs for CSV or multipart",
        { accepted: ["application/json"] },
        415,
      );
    }
    return acceptUpload(c, c.req.valid("header")["idempotency-key"] ?? null);
  },
);
