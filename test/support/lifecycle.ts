import { introspectWorkflow, type WorkflowInstanceIntrospector } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { call, callAsAdmin, TOKEN, uploadCsv } from "./http";

/** An upload whose Workflow instance the test can watch (instance id = job id). */
export async function uploadWatched(
  csv: string,
  query = "?maxDepth=0",
): Promise<{ jobId: string; instance: WorkflowInstanceIntrospector; dispose: () => Promise<void> }> {
  const introspector = await introspectWorkflow(env.JOB_WORKFLOW);
  const response = await uploadCsv(csv, query);
  if (response.status !== 202)
    throw new Error(`upload answered ${response.status}: ${await response.text()}`);
  const { jobId } = (await response.json()) as { jobId: string };
  const [instance] = await introspector.get();
  if (!instance) throw new Error("no workflow instance was created for the upload");
  return { jobId, instance, dispose: () => introspector.dispose() };
}

export async function stageRows(jobId: string) {
  const { results } = await env.DB.prepare(
    "SELECT stage, status, message FROM job_stages WHERE job_id = ?1 ORDER BY position",
  )
    .bind(jobId)
    .all<{ stage: string; status: string; message: string | null }>();
  return results;
}

/**
 * Waits until the job's Workflow has ended every stage (none PENDING or RUNNING). A job is `completed` when
 * its last task is, while its verify (which re-warms missing cache entries) may still run: a test that then
 * deletes cache entries must wait for this first, or verify may put them back.
 */
export async function waitForStagesEnded(jobId: string, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const rows = await stageRows(jobId);
    if (rows.length > 0 && rows.every((r) => r.status !== "PENDING" && r.status !== "RUNNING")) return;
    if (Date.now() > until) throw new Error(`job ${jobId}: stages still open: ${JSON.stringify(rows)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export async function logLines(jobId: string, since = 0): Promise<Record<string, unknown>[]> {
  const response = await call(`/api/jobs/${jobId}/log?since=${since}`, {
    headers: { Authorization: `Bearer ${TOKEN}` },
  });
  const text = await response.text();
  return text
    .split("\n")
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

export function control(jobId: string, action: string, query = ""): Promise<Response> {
  return callAsAdmin(`/api/jobs/${jobId}/${action}${query}`, { method: "POST" });
}

/** n distinct author rows: a job big enough to still be running when a test acts on it. */
export function authorsCsv(n: number, prefix = "Author"): string {
  const rows = Array.from(
    { length: n },
    (_, i) => `Book ${i},${prefix} Number${String.fromCharCode(97 + (i % 26))}${i}`,
  );
  return `Title,Author\n${rows.join("\n")}\n`;
}
