import { exports } from "cloudflare:workers";

export const TOKEN = "test-token";

/** Calls the worker's fetch handler as a client would. */
export function call(path: string, init: RequestInit = {}): Promise<Response> {
  return exports.default.fetch(new Request(`http://kindling.test${path}`, init));
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
