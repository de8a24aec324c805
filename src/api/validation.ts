import { zValidator } from "@hono/zod-validator";
import type { ValidationTargets } from "hono";
import type { z } from "zod";
import { badRequest } from "../errors";

/**
 * zod validation for any request part; a failure becomes the API's usual
 * `{error:{code:"invalid_request", message, details}}` 400 naming the field.
 */
export function validate<Target extends keyof ValidationTargets, Schema extends z.ZodType>(
  target: Target,
  schema: Schema,
) {
  return zValidator(target, schema, (result) => {
    if (!result.success) {
      const issues = result.error.issues.map((i) => ({ path: i.path.join("."), message: i.message }));
      const first = issues[0];
      throw badRequest(
        "invalid_request",
        first ? `${target} ${first.path || "value"}: ${first.message}` : `invalid ${target}`,
        { target, issues },
      );
    }
  });
}
