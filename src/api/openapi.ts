import type { Hono } from "hono";
import { generateSpecs } from "hono-openapi";
import type { AppEnv } from "./context";

/** Routes that exist only for the dashboard's page or the document itself: left out of it. */
const UNDOCUMENTED = ["/openapi.json"];

/**
 * The OpenAPI 3.1 document of `app`, generated from its routes: every `validate()` input and every
 * `describeRoute()` answer (hono-openapi). A route added anywhere with those shows up here without an edit.
 */
export function openApiDocument(app: Hono<AppEnv>) {
  return generateSpecs(app, {
    documentation: {
      openapi: "3.1.0",
      info: {
        title: "Kindling",
        version: "0.1.0",
        description:
          "Cache-warming pipeline for book metadata. Admin routes need `Authorization: Bearer <API_TOKEN>`; job and analytics reads accept API_TOKEN, READ_TOKEN or a job's read link.",
      },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
    },
    exclude: UNDOCUMENTED,
  });
}
