import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { createApp } from "../../src/api/app";
import storygraph from "../fixtures/storygraph-2025.csv?raw";
import { jobRow, resetAll, waitForTasksWritten } from "../support/db";
import { call, callAsAdmin, TOKEN, uploadCsv, waitForJob } from "../support/http";

interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

const small = "Title,Author\nA Book,Ada Writer\nAnother,Bea Writer\n";

function base64(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

async function expectError(response: Response, status: number, code: string): Promise<ErrorBody> {
  expect(response.status).toBe(status);
  expect(response.headers.get("content-type")).toMatch(/application\/json/);
  const body = (await response.json()) as ErrorBody;
  expect(body.error.code).toBe(code);
  expect(body.error.message.length).toBeGreaterThan(0);
  return body;
}

describe("POST /api/jobs", () => {
  beforeEach(resetAll);

  it("accepts text/csv and answers 202 with the job's plan", async () => {
    const response = await uploadCsv(storygraph);
    expect(response.status).toBe(202);
    const body = (await response.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      status: "queued",
      format: "storygraph",
      maxDepth: 2,
      priority: "normal",
      authorsQueued: 187,
      duplicatesSkipped: 21,
      rowsRejected: 0,
    });
    expect((body.links as { progress: string }).progress).toMatch(
      new RegExp(`^/api/jobs/${body.jobId}\\?key=[\\w-]{22}$`),
    );
    expect(body.estimatedWorks).toBeGreaterThan(0);
    expect((body.estimatedDuration as { seconds: number }).seconds).toBeGreaterThan(0);
    expect(response.headers.get("Location")).toBe((body.links as { progress: string }).progress);
    const job = await jobRow(String(body.jobId));
    // 187 authors and 179 ISBN items (the export's usable ISBN/UID values; 3 are not ISBNs).
    expect(body).toMatchObject({ isbnsQueued: 179, isbnsUnusable: { count: 3 } });
    expect(job).toMatchObject({ root_tasks: 187 + 179, rows_total: 193 });
  });

  it("accepts JSON with base64 CSV decoded as UTF-8, keeping accents", async () => {
    const csv = "Title,Author\nThe Reign of Quantity,René Guénon\n";
    const response = await call("/api/jobs", {
      method: "POST",
      headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
      body: JSON.stringify({ csv: base64(csv), maxDepth: 0, priority: "high" }),
    });
    expect(response.status).toBe(202);
    const { jobId, maxDepth, priority } = (await response.json()) as {
      jobId: string;
      maxDepth: number;
      priority: string;
    };
    expect({ maxDepth, priority }).toEqual({ maxDepth: 0, priority: "high" });
    await waitForTasksWritten(jobId);
    const task = await env.DB.prepare("SELECT author_name, author_key FROM tasks WHERE job_id = ?1")
      .bind(jobId)
      .first();
    expect(task).toEqual({ author_name: "René Guénon", author_key: "rené guénon" });
  });

  it("accepts multipart/form-data with the file in `file` and options as fields", async () => {
    const form = new FormData();
    form.set("file", new File([small], "library.csv", { type: "text/csv" }));
    form.set("maxDepth", "1");
    const response = await call("/api/jobs", {
      method: "POST",
      headers: { Authorization: `Bearer ${TOKEN}` },
      body: form,
    });
    expect(response.status).toBe(202);
    const body = (await response.json()) as { jobId: string; maxDepth: number; authorsQueued: number };
    expect(body).toMatchObject({ maxDepth: 1, authorsQueued: 2 });
    expect((await jobRow(body.jobId))?.filename).toBe("library.csv");
  });

  it("names the missing multipart field", async () => {
    const form = new FormData();
    form.set("upload", new File([small], "library.csv"));
    const response = await call("/api/jobs", {
      method: "POST",
      headers: { Authorization: `Bearer ${TOKEN}` },
      body: form,
    });
    const body = await expectError(response, 400, "missing_file");
    expect(body.error.details?.fieldsFound).toEqual(["upload"]);
  });

  it("refuses a missing or wrong bearer token with 401", async () => {
    await expectError(
      await call("/api/jobs", { method: "POST", headers: { "Content-Type": "text/csv" }, body: small }),
      401,
      "unauthorized",
    );
    await expectError(await uploadCsv(small, "", { Authorization: "Bearer nope" }), 401, "unauthorized");
  });

  it("refuses uploads with 503 when the deployment has no API_TOKEN", async () => {
    const app = createApp();
    const response = await app.fetch(
      new Request("http://kindling.test/api/jobs", {
        method: "POST",
        headers: { Authorization: "Bearer anything", "Content-Type": "text/csv" },
        body: small,
      }),
      { ...env, API_TOKEN: "" },
    );
    await expectError(response, 503, "auth_not_configured");
  });

  it("answers 415 for other content types, naming the accepted ones", async () => {
    const body = await expectError(
      await uploadCsv(small, "", { "Content-Type": "application/xml" }),
      415,
      "unsupported_media_type",
    );
    expect(body.error.details?.accepted).toContain("text/csv");
  });

  it("answers 400 naming the columns looked for when there is no author column", async () => {
    const body = await expectError(await uploadCsv("Title,ISBN\nA Book,123\n"), 400, "no_author_column");
    expect(body.error.message).toMatch(/Author/);
    expect(body.error.details?.columnsFound).toEqual(["Title", "ISBN"]);
  });

  it("answers 400 for an unreadable CSV, an empty body and a header without rows", async () => {
    const unreadable = await expectError(
      await uploadCsv('Title,Author\n"never closed,Ada\n'),
      400,
      "unreadable_csv",
    );
    expect(unreadable.error.details?.row).toBeDefined();
    await expectError(await uploadCsv(""), 400, "empty_csv");
    await expectError(await uploadCsv("Title,Author\n"), 400, "no_rows");
  });

  it("answers 400 for a file that is not UTF-8", async () => {
    const latin1 = new Uint8Array([...new TextEncoder().encode("Title,Author\nX,Ren"), 0xe9, 0x0a]);
    await expectError(await uploadCsv(latin1 as unknown as string), 400, "invalid_encoding");
  });

  it("validates maxDepth and priority", async () => {
    const depth = await expectError(await uploadCsv(small, "?maxDepth=4"), 400, "invalid_option");
    expect(depth.error.message).toMatch(/between 0 and 3/);
    await expectError(await uploadCsv(small, "?priority=urgent"), 400, "invalid_option");
  });

  it("answers 413 for a streamed body over the limit and creates no job", async () => {
    const limit = Number(env.UPLOAD_MAX_BYTES);
    // A plausible export (header, then rows) that simply goes on past the limit.
    const chunk = new TextEncoder().encode(`${"x".repeat(1023)}\n`);
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode("Title,Author\n"));
      },
      pull(controller) {
        if (sent > limit + chunk.byteLength) controller.close();
        else {
          controller.enqueue(chunk);
          sent += chunk.byteLength;
        }
      },
    });
    const body = await expectError(await uploadCsv(stream as unknown as string), 413, "payload_too_large");
    expect(body.error.details?.limitBytes).toBe(limit);
    const jobs = await env.DB.prepare("SELECT COUNT(*) AS n FROM jobs").first<{ n: number }>();
    expect(jobs?.n).toBe(0);
  });

  it("fits a 50,000-row Goodreads-shaped export within the size limit", async () => {
    const header =
      "Book Id,Title,Author,Author l-f,Additional Authors,ISBN,ISBN13,My Rating,Average Rating,Publisher,Binding,Number of Pages,Year Published,Original Publication Year,Date Read,Date Added,Bookshelves,Bookshelves with positions,Exclusive Shelf,My Review,Spoiler,Private Notes,Read Count,Owned Copies";
    const rows = [header];
    for (let i = 0; i < 50_000; i++) {
      const author = `Author Number ${i % 100}`;
      rows.push(
        `${1000 + i},"The Long Title of Book ${i}: A Subtitle, With Commas",${author},"Number ${i % 100}, Author",,"=""""","=""""",0,4.05,Some Publisher House,Paperback,352,2015,2014,,2025/06/29,to-read,to-read (#${i}),to-read,,,,0,0`,
      );
    }
    const csv = rows.join("\n");
    expect(csv.length).toBeLessThan(Number(env.UPLOAD_MAX_BYTES));
    const response = await uploadCsv(csv, "?maxDepth=0");
    expect(response.status).toBe(202);
    expect(await response.json()).toMatchObject({
      rows: 50_000,
      authorsQueued: 100,
      duplicatesSkipped: 49_900,
    });
  });

  it("returns the same job for the same file, options and Idempotency-Key, and 422 for a different file", async () => {
    const first = await uploadCsv(small, "?maxDepth=0", { "Idempotency-Key": "k-1" });
    const second = await uploadCsv(small, "?maxDepth=0", { "Idempotency-Key": "k-1" });
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    expect(second.headers.get("Idempotent-Replayed")).toBe("true");
    const a = (await first.json()) as { jobId: string; authorsQueued: number };
    const b = (await second.json()) as { jobId: string; authorsQueued: number };
    expect(b.jobId).toBe(a.jobId);
    expect(b.authorsQueued).toBe(a.authorsQueued);
    const jobs = await env.DB.prepare("SELECT COUNT(*) AS n FROM jobs").first<{ n: number }>();
    expect(jobs?.n).toBe(1);
    await expectError(
      await uploadCsv(`${small}X,Cy Writer\n`, "?maxDepth=0", { "Idempotency-Key": "k-1" }),
      422,
      "idempotency_key_reused",
    );
  });
});

describe("POST /api/warming/upload (older JSON shape)", () => {
  beforeEach(resetAll);

  it("creates a job from { csv: base64, maxDepth, priority }", async () => {
    const response = await call("/api/warming/upload", {
      method: "POST",
      headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
      body: JSON.stringify({ csv: base64(small), maxDepth: 1, priority: "normal" }),
    });
    expect(response.status).toBe(202);
    expect(await response.json()).toMatchObject({ authorsQueued: 2, maxDepth: 1 });
  });

  it("refuses a raw CSV body with 415 and a missing csv field with 400", async () => {
    const raw = await call("/api/warming/upload", {
      method: "POST",
      headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "text/csv" },
      body: small,
    });
    await expectError(raw, 415, "unsupported_media_type");
    const missing = await call("/api/warming/upload", {
      method: "POST",
      headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
      body: JSON.stringify({ maxDepth: 1 }),
    });
    await expectError(missing, 400, "invalid_request");
  });
});

describe("reading jobs", () => {
  beforeEach(resetAll);

  it("GET /api/jobs/:id reports counts per state and depth, percent, ETA and timestamps", async () => {
    const { jobId } = (await (await uploadCsv(small, "?maxDepth=0")).json()) as { jobId: string };
    const progress = (await waitForJob(jobId)) as Record<string, unknown>;
    expect(progress).toMatchObject({
      jobId,
      status: "completed",
      maxDepth: 0,
      percent: 100,
      etaSeconds: 0,
      counts: { total: 2, done: 2, pending: 0, queued: 0, running: 0, skipped: 0, failed: 0, dead: 0 },
      byDepth: [{ depth: 0, total: 2, done: 2 }],
      deadLetters: 0,
    });
    expect(progress.worksCached).toBeGreaterThan(0);
    expect(Date.parse(String(progress.completedAt))).toBeGreaterThanOrEqual(
      Date.parse(String(progress.startedAt)),
    );
  });

  it("GET /api/jobs/:id answers 404 for an unknown job and 400 for a malformed id", async () => {
    await expectError(await callAsAdmin(`/api/jobs/${crypto.randomUUID()}`), 404, "not_found");
    await expectError(await callAsAdmin("/api/jobs/not-a-uuid"), 400, "invalid_request");
  });

  it("GET /api/jobs lists recent jobs, newest first", async () => {
    const a = (await (await uploadCsv(small, "?maxDepth=0")).json()) as { jobId: string };
    await new Promise((r) => setTimeout(r, 5));
    const b = (await (await uploadCsv(small, "?maxDepth=0")).json()) as { jobId: string };
    const list = (await (await callAsAdmin("/api/jobs?limit=10")).json()) as { jobs: { jobId: string }[] };
    expect(list.jobs.map((j) => j.jobId)).toEqual([b.jobId, a.jobId]);
    await expectError(await callAsAdmin("/api/jobs?limit=0"), 400, "invalid_request");
  });

  it("GET /api/jobs/:id/failures lists failed tasks with their reason, paginated", async () => {
    const rejecting = "Title,Author\nA,Ada Writer\nB,Bea Writer\nC,Cy Writer\n";
    const { jobId } = (await (await uploadCsv(rejecting, "?maxDepth=0")).json()) as { jobId: string };
    await waitForTasksWritten(jobId);
    await env.DB.prepare(
      "UPDATE tasks SET status = 'failed', error = 'upstream_rejected: test' WHERE job_id = ?1 AND author_key != 'cy writer'",
    )
      .bind(jobId)
      .run();
    const page1 = (await (await callAsAdmin(`/api/jobs/${jobId}/failures?limit=1`)).json()) as {
      failures: { author: string; error: string; status: string }[];
      nextCursor: string | null;
    };
    expect(page1.failures).toHaveLength(1);
    expect(page1.failures[0]).toMatchObject({
      author: "Ada Writer",
      status: "failed",
      error: "upstream_rejected: test",
    });
    const page2 = (await (
      await callAsAdmin(`/api/jobs/${jobId}/failures?limit=1&cursor=${page1.nextCursor}`)
    ).json()) as {
      failures: { author: string }[];
    };
    expect(page2.failures.map((f) => f.author)).toEqual(["Bea Writer"]);
    await expectError(await callAsAdmin(`/api/jobs/${crypto.randomUUID()}/failures`), 404, "not_found");
  });
});

describe("health and unknown routes", () => {
  it("GET /health reports D1, KV and queues", async () => {
    const response = await call("/health");
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      status: "ok",
      checks: { d1: { ok: true }, kv: { ok: true }, queues: { ok: true } },
      deadLetters: { count: 0, threshold: 10, alert: false },
      breakers: { kv: { state: "closed" }, openlibrary: { state: "closed" } },
    });
  });

  it("answers unknown routes with a JSON 404", async () => {
    await expectError(await call("/api/nothing-here"), 404, "not_found");
  });
});
