/**
 * Property-based tests (fast-check) of the upload routes through the worker's fetch handler: generated
 * bodies of every shape (raw CSV, multipart, JSON, the legacy POST /api/warming/upload, wrong content
 * types; generators in scripts/fuzz/bodies.ts). After each request:
 *
 * - never a 5xx (nor any status other than 202 and 4xx);
 * - a 4xx is `{error:{code,message}}` and leaves the `jobs` table count unchanged;
 * - a 202 carries a jobId and creates exactly one job row.
 *
 * Valid options ask for maxDepth 0 so little warming happens; every job a property creates is waited for
 * (terminal, or left pending with nothing in flight) before the test ends, so no work leaks into later
 * test files. The seed is fixed, so a failure reproduces and a pass is not luck; change FUZZ_SEED to explore.
 *
 * KNOWN FAILURES on branch `fuzz` (expected; fixed by the hardening work, not here):
 * - "never a 5xx…" for the csv, json and legacy shapes (2, 1, 2 of 40 with this seed; multipart's sample
 *   happens to hold no such name), and the huge-name property (13 of 24): an author name longer than 1,024
 *   characters passes the parser, the job and its tasks are written, then the queue message schema
 *   (authorKey/authorName ≤ 1,024) throws a ZodError → HTTP 500 `internal_error` and a job row whose
 *   task stays `pending`. Minimal body: `Title,Author\nA,<1,025 × "a">\n` as text/csv with ?maxDepth=0.
 *   (Other findings may show up with them: the assertion message lists every failing case of the run.)
 */
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { beforeEach, describe, expect, it } from "vitest";
import {
  base64,
  describeRequest,
  type FuzzRequest,
  hugeName,
  type Shape,
  uploadRequests,
} from "../../scripts/fuzz/bodies";
import goodreads2019 from "../fixtures/goodreads-2019.csv?raw";
import goodreads2025 from "../fixtures/goodreads-2025.csv?raw";
import storygraph2025 from "../fixtures/storygraph-2025.csv?raw";
import { resetAll } from "../support/db";
import { call, TOKEN } from "../support/http";

const FUZZ_SEED = 20_260_417;
const RUNS_PER_SHAPE = 40;
const fixtures = { goodreads: [goodreads2019, goodreads2025], storygraph: [storygraph2025] };
const requests = uploadRequests(fixtures);

async function jobCount(): Promise<number> {
  const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM jobs").first<{ n: number }>();
  return row?.n ?? -1;
}

function send(request: FuzzRequest): Promise<Response> {
  return call(request.path, {
    method: "POST",
    headers: {
      ...request.headers,
      Authorization: request.badToken ? "Bearer not-the-token" : `Bearer ${TOKEN}`,
    },
    body: request.body,
  });
}

/** POSTs a well-formed upload with the admin token. */
function postAsAdmin(path: string, init: RequestInit): Promise<Response> {
  const headers = { ...(init.headers as Record<string, string>), Authorization: `Bearer ${TOKEN}` };
  return call(path, { ...init, method: "POST", headers });
}

/** Sends one request and returns what is wrong with the answer ("" when nothing), plus a created job id. */
async function check(request: FuzzRequest): Promise<{ problem: string; jobId: string | null }> {
  const before = await jobCount();
  const response = await send(request);
  const text = await response.text();
  const after = await jobCount();
  const status = response.status;
  const problems: string[] = [];
  let jobId: string | null = null;
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch {
    problems.push("answer is not JSON");
  }
  if (status === 202) {
    jobId = (body as { jobId?: unknown } | null)?.jobId as string | null;
    if (typeof jobId !== "string") problems.push("202 without a jobId");
    if (after !== before + 1) problems.push(`202 but the jobs count went ${before} → ${after}`);
    if (request.badToken) problems.push("202 with a wrong token");
  } else if (status >= 400 && status < 500) {
    const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
    if (typeof error?.code !== "string" || typeof error.message !== "string" || error.message === "")
      problems.push("4xx without {error:{code,message}}");
    if (after !== before) problems.push(`refused (${status}) but the jobs count went ${before} → ${after}`);
  } else {
    problems.push(`HTTP ${status}`);
    if (after !== before) problems.push(`and the jobs count went ${before} → ${after}`);
  }
  const problem =
    problems.length === 0
      ? ""
      : `${problems.join("; ")}: ${status} ${text.slice(0, 200)}\n${describeRequest(request, 300)}`;
  return { problem, jobId };
}

/**
 * Waits until every job's ingest has written its tasks and no task is queued or running (pending ones have
 * no message in flight).
 */
async function drain(timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const row = await env.DB.prepare(
      `SELECT (SELECT COUNT(*) FROM tasks WHERE status IN ('queued', 'running'))
            + (SELECT COUNT(*) FROM jobs WHERE roots_written = 0 AND status IN ('queued', 'running')) AS n`,
    ).first<{ n: number }>();
    if ((row?.n ?? 0) === 0) return;
    if (Date.now() > deadline)
      throw new Error(`${row?.n} tasks queued/running or jobs not ingested after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A well-formed upload of `csv` in one of the four accepted shapes, with maxDepth 0. */
function wellFormed(shape: Shape, csv: string, priority: string): { path: string; init: RequestInit } {
  if (shape === "csv") {
    return {
      path: `/api/jobs?maxDepth=0&priority=${priority}`,
      init: { headers: { "Content-Type": "text/csv" }, body: csv },
    };
  }
  if (shape === "multipart") {
    const form = new FormData();
    form.set("file", new File([csv], "library.csv", { type: "text/csv" }));
    form.set("maxDepth", "0");
    form.set("priority", priority);
    return { path: "/api/jobs", init: { body: form } };
  }
  return {
    path: shape === "legacy" ? "/api/warming/upload" : "/api/jobs",
    init: {
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ csv: base64(new TextEncoder().encode(csv)), maxDepth: 0, priority }),
    },
  };
}

describe("upload routes under generated bodies (fast-check)", () => {
  beforeEach(resetAll);

  // KNOWN FAILURE today for csv, json and legacy (author names > 1,024 characters → 500 and a stuck job
  // row; see the header comment). multipart and wrong-type pass with this seed.
  it.each<Shape>(["csv", "multipart", "json", "legacy", "wrong-type"])(
    "%s: never a 5xx; a refusal creates no job row; a 202 creates exactly one",
    async (shape) => {
      const ofShape = requests.filter((r) => r.shape === shape);
      const failures: string[] = [];
      try {
        // The property records each failing case and carries on (no shrinking: each step is a request),
        // so one run lists every failure of its RUNS_PER_SHAPE cases.
        await fc.assert(
          fc.asyncProperty(ofShape, async (request) => {
            const { problem } = await check(request);
            if (problem !== "") failures.push(problem);
          }),
          { seed: FUZZ_SEED, numRuns: RUNS_PER_SHAPE },
        );
      } finally {
        await drain();
      }
      expect(
        failures,
        `${failures.length} of ${RUNS_PER_SHAPE} ${shape} cases failed; the first ones:\n\n${failures.slice(0, 3).join("\n\n")}`,
      ).toEqual([]);
    },
    120_000,
  );

  it("a mostly-valid export (a fixture's first rows, maxDepth 0) is accepted in every shape", async () => {
    const valid = fc.record({
      fixture: fc.constantFrom(goodreads2019, goodreads2025, storygraph2025),
      lines: fc.integer({ min: 2, max: 30 }),
      shape: fc.constantFrom<Shape[]>("csv", "multipart", "json", "legacy"),
      priority: fc.constantFrom("low", "normal", "high"),
    });
    await fc
      .assert(
        fc.asyncProperty(valid, async ({ fixture, lines, shape, priority }) => {
          const csv = fixture.split("\n").slice(0, lines).join("\n");
          const { path, init } = wellFormed(shape, csv, priority);
          const before = await jobCount();
          const response = await postAsAdmin(path, init);
          const text = await response.text();
          expect(response.status, `${shape} ${lines} lines → ${text.slice(0, 300)}`).toBe(202);
          expect(await jobCount()).toBe(before + 1);
          expect(JSON.parse(text)).toMatchObject({ maxDepth: 0, priority });
        }),
        { seed: FUZZ_SEED, numRuns: 30 },
      )
      .finally(drain);
  }, 120_000);

  // KNOWN FAILURE today in all four shapes: names over 1,024 characters → 500 and a stuck job row.
  it("a huge author name (300–20,000 characters) in a well-formed upload: a 202 and one job, or a 4xx and none", async () => {
    const failures: string[] = [];
    const cases = fc.record({
      name: hugeName,
      shape: fc.constantFrom<Shape[]>("csv", "multipart", "json", "legacy"),
      column: fc.constantFrom(
        "Title,Author\nA Book,",
        "Title,Authors,ISBN/UID\nA Book,",
        "Title,Authors\nA,",
      ),
    });
    try {
      await fc.assert(
        fc.asyncProperty(cases, async ({ name, shape, column }) => {
          const csv = `${column}"${name}"\n`;
          const { path, init } = wellFormed(shape, csv, "normal");
          const before = await jobCount();
          const response = await postAsAdmin(path, init);
          const text = await response.text();
          const created = (await jobCount()) - before;
          const ok =
            (response.status === 202 && created === 1) ||
            (response.status >= 400 && response.status < 500 && created === 0);
          if (!ok) {
            failures.push(
              `${shape}, name of ${name.length} × ${JSON.stringify(name.slice(0, 3))}…: HTTP ${response.status}, ${created} job row(s) created: ${text.slice(0, 120)}`,
            );
          }
        }),
        { seed: FUZZ_SEED, numRuns: 24 },
      );
    } finally {
      await drain();
    }
    expect(failures, `${failures.length} of 24 cases failed:\n${failures.slice(0, 8).join("\n")}`).toEqual(
      [],
    );
  }, 120_000);
});
