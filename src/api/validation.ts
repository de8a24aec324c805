import type { ValidationTargets } from "hono";
import { validator } from "hono-openapi";
import type { z } from "zod";
import { badRequest } from "../errors";

const segment = (p: PropertyKey | { key: PropertyKey }) => String(typeof p === "object" ? p.key : p);

/**
 * zod validation for any request part; a failure becomes the API's usual
 * `{error:{code:"invalid_request", message, details}}` 400 naming the field. hono-openapi's validator also
 * records the schema on the route, so every validated input appears in /openapi.json.
 */
export function validate<Target extends keyof ValidationTargets, Schema extends z.ZodType>(
  target: Target,
  schema: Schema,
) {
  return validator(target, schema, (result) => {
    if (!result.success) {
      const issues = result.error.map((i) => ({
        path: (i.path ?? []).map(segment).join("."),
        message: i.message,
      }));
      const first = issues[0];
      throw badRequest(
        "invalid_request",
        first ? `${target} ${first.path || "value"}: ${first.message}` : `invalid ${target}`,
        { target, issues },
      );
    }
  });
}
