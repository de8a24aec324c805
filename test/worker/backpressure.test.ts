import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { createApp } from "../../src/api/app";
import { loadConfig } from "../../src/config";
import { decideBacklog, estimateBacklog } from "../../src/jobs/backlog";
import { resetAll } from "../support/db";
import { trackJob } from "../support/drain";
import { TOKEN } from "../support/http";

/**
 * Backpressure (#13 item 3): at 3 requests/s and 0.19 requests per open task, 1,000 open tasks drain in
 * 64 s, 2,000 in 127 s, 3,000 in 190 s. The limit is 100 s for normal uploads and 150 s for `high`.
 */
const limits = {
  OPENLIBRARY_RATE_PER_SECOND: "3",
  BACKLOG_LIMIT_SECONDS: "100",
  BACKLOG_HIGH_BYPASS_SECONDS: "50",
  BACKLOG_REQUESTS_PER_TASK: "0.19",
};
const csv = "Title,Author\nA Book,Ada Writer\nAnother,Bea Writer\n";
const auth = { Authorization: `Bearer ${TOKEN}` };

interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

/** A job that is `status` with `open` of its tasks still open (and some finished, which do not count). */
async function seedJob(id: string, status: string, open: number, finished = 500): Promise<void> {
  await env.DB.prepare(
    `INSERT INTO jobs (id, status, max_depth, priority, format, request_hash, total_tasks, done_count,
       skipped_count, failed_count, dead_count, cancelled_count, created_at, updated_at)
     VALUES (?1, ?2, 0, 'normal', 'goodreads', 'seed', ?3, ?4, ?5, ?5, ?5, ?5, 1, 1)`,
  )
    .bind(id, status, open + finished, finished - 4 * Math.floor(finished / 5), Math.floor(finished / 5))
    .run();
}

async function jobIds(): Promise<string[]> {
  const { results } = await env.DB.prepare("SELECT id FROM jobs ORDER BY id").all<{ id: string }>();
  return results.map((r) => r.id);
}

async function storedKeys(): Promise<string[]> {
  return (await env.ARTIFACTS.list()).objects.map((o) => o.key);
}

/** Every call the upload made to R2 (a refusal before the body makes none). */
function recordingBucket(): { bucket: R2Bucket; calls: string[] } {
  const calls: string[] = [];
  const bucket = new Proxy(env.ARTIFACTS, {
    get(target, prop) {
      const value = Reflect.get(target, prop);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        calls.push(String(prop));
        return value.apply(target, args);
      };
    },
  });
  return { bucket, calls };
}

async function upload(
  init: { body: BodyInit | ReadableStream; query?: string; headers?: Record<string, string> },
  bucket: R2Bucket = env.ARTIFACTS,
): Promise<Response> {
  const request = new Request(`http://kindling.test/api/jobs${init.query ?? ""}`, {
    method: "POST",
    // A FormData body brings its own multipart Content-Type (with the boundary).
    headers: {
      ...auth,
      ...(init.body instanceof FormData ? {} : { "Content-Type": "text/csv" }),
      ...init.headers,
    },
    body: init.body,
    duplex: "half",
  } as RequestInit);
  const ctx = createExecutionContext();
  const response = await createApp().fetch(request, { ...env, ...limits, ARTIFACTS: bucket }, ctx);
  await waitOnExecutionContext(ctx);
  if (response.status === 202) trackJob(((await response.clone().json()) as { jobId: string }).jobId);
  return response;
}

describe("backpressure: 429 backlog_full", () => {
  beforeEach(async () => {
    await resetAll();
    const keys = await storedKeys();
    if (keys.length > 0) await env.ARTIFACTS.delete(keys);
  });

  it("refuses an upload past the limit with Retry-After and the estimate, and stores nothing", async () => {
    await seedJob("a-open", "running", 1500);
    await seedJob("b-open", "queued", 500);
    // Finished, cancelled and paused jobs hold no backlog, however large.
    await seedJob("c-done", "completed", 0, 90_000);
    await seedJob("d-paused", "paused", 90_000);
    await seedJob("e-cancelled", "cancelled", 90_000);
    const { bucket, calls } = recordingBucket();
    const response = await upload({ body: csv, headers: { "Idempotency-Key": "k-refused" } }, bucket);
    expect(response.status).toBe(429);
    // 2,000 open tasks × 0.19 = 380 requests at 3/s: 127 s, 27 s past the 100 s limit.
    expect(response.headers.get("Retry-After")).toBe("27");
    const body = (await response.json()) as ErrorBody;
    expect(body.error.code).toBe("backlog_full");
    expect(body.error.details).toEqual({
      backlogSeconds: 127,
      limitSeconds: 100,
      priority: "normal",
      openTasks: 2000,
      openJobs: 2,
      estimatedRequests: 380,
      requestsPerTask: 0.19,
      requestsPerSecond: 3,
      retryAfterSeconds: 27,
    });
    // Nothing written: no job row, no idempotency key, no R2 call at all, nothing listed in the bucket.
    expect(await jobIds()).toEqual(["a-open", "b-open", "c-done", "d-paused", "e-cancelled"]);
    expect(
      await env.DB.prepare("SELECT COUNT(*) AS n FROM jobs WHERE idempotency_key IS NOT NULL").first("n"),
    ).toBe(0);
    expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM tasks").first("n")).toBe(0);
    expect(calls).toEqual([]);
    expect(await storedKeys()).toEqual([]);
  });

  it("answers before reading the body: a body that never ends is still refused", async () => {
    await seedJob("a-open", "running", 2000);
    const stalled = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode("Title,Author\n"));
      },
      // Ends only long after the answer must have come (a check after the body would wait for it).
      pull: (controller) =>
        new Promise<void>((resolve) => setTimeout(() => resolve(controller.close()), 8_000)),
    });
    const started = Date.now();
    const response = await upload({ body: stalled });
    expect(response.status).toBe(429);
    // The error handler drains an unread body for at most 2 s before answering.
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await jobIds()).toEqual(["a-open"]);
  });

  it("lets a high upload past the normal limit, up to the bypass", async () => {
    await seedJob("a-open", "running", 2000); // 127 s: over 100, within 150
    const normal = await upload({ body: csv, query: "?priority=normal" });
    expect(normal.status).toBe(429);
    const high = await upload({ body: csv, query: "?priority=high" });
    expect(high.status).toBe(202);
    expect((await jobIds()).length).toBe(2);
  });

  it("decides a priority sent in the body once it is parsed, discarding the input it refuses", async () => {
    await seedJob("a-open", "running", 2000);
    const form = (priority: string) => {
      const data = new FormData();
      data.set("priority", priority);
      data.set("file", new File([csv], "export.csv", { type: "text/csv" }));
      return data;
    };
    const refused = await upload({ body: form("low") });
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as ErrorBody).error.details?.priority).toBe("low");
    expect(await storedKeys()).toEqual([]);
    const accepted = await upload({ body: form("high") });
    expect(accepted.status).toBe(202);
  });

  it("refuses high too past the bypass", async () => {
    await seedJob("a-open", "running", 3000); // 190 s: over 150
    const response = await upload({ body: csv, query: "?priority=high" });
    expect(response.status).toBe(429);
    expect(response.headers.get("Retry-After")).toBe("40");
    const body = (await response.json()) as ErrorBody;
    expect(body.error.details).toMatchObject({ backlogSeconds: 190, limitSeconds: 150, priority: "high" });
    expect(await jobIds()).toEqual(["a-open"]);
    expect(await storedKeys()).toEqual([]);
  });

  it("accepts under the limit, and replays an existing Idempotency-Key whatever the backlog", async () => {
    await seedJob("a-open", "running", 1000); // 64 s
    const first = await upload({ body: csv, headers: { "Idempotency-Key": "k1" } });
    expect(first.status).toBe(202);
    const { jobId } = (await first.json()) as { jobId: string };
    await seedJob("z-big", "running", 50_000);
    const again = await upload({ body: csv, headers: { "Idempotency-Key": "k1" } });
    expect(again.headers.get("Idempotent-Replayed")).toBe("true");
    expect(((await again.json()) as { jobId: string }).jobId).toBe(jobId);
    const fresh = await upload({ body: csv, headers: { "Idempotency-Key": "k2" } });
    expect(fresh.status).toBe(429);
  });
});

describe("the backlog verdict", () => {
  const config = loadConfig({ ...limits });
  const estimate = (openTasks: number) =>
    estimateBacklog({ openTasks, openJobs: 1, existingJobId: null }, config);

  it("waits for a priority it does not know only between the two limits", () => {
    expect(decideBacklog(estimate(1000), config, null).kind).toBe("accept");
    expect(decideBacklog(estimate(2000), config, null).kind).toBe("needs-priority");
    expect(decideBacklog(estimate(3000), config, null).kind).toBe("refuse");
  });

  it("is off with a limit of 0 or no provider rate", () => {
    expect(
      decideBacklog(estimate(90_000), loadConfig({ ...limits, BACKLOG_LIMIT_SECONDS: "0" }), "low").kind,
    ).toBe("accept");
    const unlimited = loadConfig({ ...limits, OPENLIBRARY_RATE_PER_SECOND: "0" });
    const e = estimateBacklog({ openTasks: 90_000, openJobs: 1, existingJobId: null }, unlimited);
    expect(decideBacklog(e, unlimited, "low").kind).toBe("accept");
  });
});
