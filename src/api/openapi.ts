import type { Context, Hono } from "hono";
import { generateSpecs } from "hono-openapi";
import type { AppEnv } from "./context";

const OK = { description: "OK (JSON)" };

/** Every error answer: `{error:{code,message,details?}}` (src/errors.ts). */
const ERROR_SCHEMA = {
  type: "object" as const,
  required: ["error"],
  properties: {
    error: {
      type: "object" as const,
      required: ["code", "message"],
      properties: { code: { type: "string" as const }, message: { type: "string" as const }, details: {} },
    },
  },
};

/** Routes that exist only for the dashboard's page or the document itself: left out of it. */
const UNDOCUMENTED = ["/openapi.json"];

/**
 * The OpenAPI 3.1 document of `app`, generated from its routes: every `validate()` input and every
 * `describeRoute()` answer (hono-openapi). A route added anywhere with those shows up here without an edit.
 */
export async function openApiDocument(app: Hono<AppEnv>) {
  const document = await generateSpecs(app, {
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
    defaultValidationErrorResponse: {
      description: "invalid_request: the field and why, in the API's error shape",
      content: { "application/json": { schema: ERROR_SCHEMA } },
    },
  });
  return withDescribedAnswers(document);
}

/**
 * A route documented only by its validators gets an empty `200: {}` from hono-openapi, which OpenAPI
 * refuses (a response needs a description): give those one.
 */
function withDescribedAnswers<T extends { paths?: object }>(document: T): T {
  for (const item of Object.values(document.paths ?? {}) as Record<string, { responses?: object }>[]) {
    for (const operation of Object.values(item)) {
      for (const response of Object.values(operation.responses ?? {}) as { description?: string }[]) {
        response.description ??= OK.description;
      }
    }
  }
  return document;
}

/** GET /openapi.json: generated once per isolate (the routes do not change while it lives). */
export function openApiHandler(app: Hono<AppEnv>) {
  let document: Promise<unknown> | undefined;
  return async (c: Context<AppEnv>) => {
    if (!document) {
      document = openApiDocument(app);
      document.catch(() => {
        document = undefined;
      });
    }
    return c.json(await document);
  };
}
