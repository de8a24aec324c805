import { beforeEach, describe, expect, it } from "vitest";
import { resetAll } from "../support/db";
import { call, callAsAdmin, uploadCsv } from "../support/http";

const READ_TOKEN = "test-read-token";
const asReader = (path: string, init: RequestInit = {}) =>
  call(path, { ...init, headers: { Authorization: `Bearer ${READ_TOKEN}`, ...init.headers } });

async function createJob(): Promise<{ jobId: string; links: { progress: string; failures: string } }> {
  const response = await uploadCsv("Title,Author\nDune,Frank Herbert\n", "?maxDepth=0");
  expect(response.status).toBe(202);
  return (await response.json()) as { jobId: string; links: { progress: string; failures: string } };
}

describe("who may read job data", () => {
  beforeEach(resetAll);

  it("refuses job lists, progress, failures and analytics without a token (401)", async () => {
    const { jobId } = await createJob();
    for (const path of [
      "/api/jobs",
      `/api/jobs/${jobId}`,
      `/api/jobs/${jobId}/failures`,
      "/api/analytics/cache",
    ]) {
      const response = await call(path);
      expect(response.status, path).toBe(401);
      const body = (await response.json()) as { error: { code: string } };
      expect(body.error.code).toBe("unauthorized");
      // Nothing of the job leaks in the refusal.
      expect(JSON.stringify(body)).not.toContain("Frank");
    }
    expect((await call("/api/jobs", { headers: { Authorization: "Bearer guess" } })).status).toBe(401);
  });

  it("lets the read-only token read but not upload or redrive", async () => {
    const { jobId } = await createJob();
    expect((await asReader("/api/jobs")).status).toBe(200);
    expect((await asReader(`/api/jobs/${jobId}`)).status).toBe(200);
    expect((await asReader(`/api/jobs/${jobId}/failures`)).status).toBe(200);
    const upload = await asReader("/api/jobs", {
      method: "POST",
      headers: { "Content-Type": "text/csv" },
      body: "Title,Author\nX,Y\n",
    });
    expect(upload.status).toBe(401);
    expect((await asReader(`/api/jobs/${jobId}/retry`, { method: "POST" })).status).toBe(401);
  });

  it("gives the uploader a read link for that job only, which the admin can revoke", async () => {
    const first = await createJob();
    const second = await createJob();
    expect(first.links.progress).toMatch(/\?key=/);
    const progress = await call(first.links.progress);
    expect(progress.status).toBe(200);
    expect(((await progress.json()) as { jobId: string }).jobId).toBe(first.jobId);
    expect((await call(first.links.failures)).status).toBe(200);
    // The same key does not open another job, nor the job list.
    const key = new URL(first.links.progress, "http://x").searchParams.get("key");
    expect((await call(`/api/jobs/${second.jobId}?key=${key}`)).status).toBe(401);
    expect((await call(`/api/jobs?key=${key}`)).status).toBe(401);
    expect((await call(`/api/jobs/${first.jobId}?key=${key}x`)).status).toBe(401);

    const rotated = await callAsAdmin(`/api/jobs/${first.jobId}/read-link`, { method: "POST" });
    expect(rotated.status).toBe(200);
    const { links } = (await rotated.json()) as { links: { progress: string } };
    expect(links.progress).not.toBe(first.links.progress);
    expect((await call(first.links.progress)).status).toBe(401);
    expect((await call(links.progress)).status).toBe(200);
    expect((await call(second.links.progress)).status).toBe(200);
    expect((await asReader(`/api/jobs/${first.jobId}/read-link`, { method: "POST" })).status).toBe(401);
  });

  it("keeps the public read API anonymous", async () => {
    const response = await call("/api/books/isbn/not-an-isbn");
    expect(response.status).toBe(400);
    expect((await call("/health")).status).toBe(200);
  });
});
