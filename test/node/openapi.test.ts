import { Validator } from "@seriousme/openapi-schema-validator";
import { describe, expect, it } from "vitest";
import { createApp } from "../../src/api/app";
import { openApiDocument } from "../../src/api/openapi";

const METHODS = ["get", "post", "put", "patch", "delete"] as const;
/** Hono's `/api/jobs/:id` is OpenAPI's `/api/jobs/{id}`. */
const openApiPath = (path: string) => path.replace(/:([A-Za-z0-9_]+)/g, "{$1}");

describe("/openapi.json", () => {
  it("is a valid OpenAPI 3.1 document", async () => {
    const document = await openApiDocument(createApp());
    const result = await new Validator().validate(document as Record<string, unknown>);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it("documents exactly the app's routes (method and path), and the analytics answers' schemas", async () => {
    const app = createApp();
    const document = (await openApiDocument(app)) as {
      paths: Record<string, Record<string, { responses?: Record<string, { content?: unknown }> }>>;
    };
    const routes = new Set(
      app.routes
        .filter((r) => r.method !== "ALL" && r.path !== "/openapi.json")
        .map((r) => `${r.method} ${openApiPath(r.path)}`),
    );
    const documented = new Set(
      Object.entries(document.paths).flatMap(([path, item]) =>
        METHODS.filter((m) => m in item).map((m) => `${m.toUpperCase()} ${path}`),
      ),
    );
    expect([...documented].sort()).toEqual([...routes].sort());
    expect(routes.size).toBeGreaterThan(15);
    const overview = document.paths["/api/analytics/overview"]?.get?.responses?.["200"]?.content;
    expect(JSON.stringify(overview)).toContain("authorsProcessed");
  });
});
