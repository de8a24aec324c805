import { exports } from "cloudflare:workers";
import { trackJob } from "./drain";

export const TOKEN = "test-token";

/**
 * Calls the worker's fetch handler as a client would. A job an accepted POST started (an upload, a
 * redrive) is tracked, so the test waits for its messages before it ends (test/support/drain.ts).
 */
export async function call(path: string, init: RequestInit = {}): Promise<Response> {
  const response = await exports.default.fetch(new Request(`http://kindling.test${path}`, init));
  if ((init.method ?? "GET").toUpperCase() === "POST" && response.status < 300) {
    const body = (await response
      .clone()
      .json()
      .catch(() => null)) as { jobId?: unknown } | null;
    if (typeof body?.jobId === "string") trackJob(body.jobId);
  }
  return response;
}

export function uploadCsv(csv: string, query = "", headers: Record<string, string> = {}): Promise<Response> {
  return call(`/api/jobs${query}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "text/csv", ...headers },
    body: csv,
  });
}

/** Calls a route that needs the admin token. */
export function callAsAdmin(path: string, init: RequestInit = {}): Promise<Response> {
  return call(path, { ...init, headers: { Authorization: `Bearer ${TOKEN}`, ...init.headers } });
}

/** Polls the job until it is no longer queued or running. */
export async function waitForJob(jobId: string, timeoutMs = 20_000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  let last: Record<string, unknown> = {};
  while (Date.now() < deadline) {
    const response = await call(`/api/jobs/${jobId}`, { headers: { Authorization: `Bearer ${TOKEN}` } });
    last = (await response.json()) as Record<string, unknown>;
    if (last.status !== "queued" && last.status !== "running") return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`job ${jobId} did not finish in ${timeoutMs} ms: ${JSON.stringify(last)}`);
}
