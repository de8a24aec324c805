/**
 * The chaos soak's lifecycle part (#12): while the faults run, one job is cancelled and another paused and
 * resumed through the admin routes; afterwards their invariants are checked like the main job's.
 */
import type { JobView } from "../../src/api/job-responses.ts";
import { sleep } from "../lib/sleep.ts";

export interface SideJobs {
  cancelId: string;
  pauseId: string;
  authors: number;
}

type Log = (message: string) => void;

async function call<T>(
  url: string,
  token: string,
  method = "GET",
  body?: string,
): Promise<{ status: number; json: T }> {
  const response = await fetch(url, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { "Content-Type": "text/csv" } : {}) },
    ...(body ? { body } : {}),
  });
  return { status: response.status, json: (await response.json()) as T };
}

export async function uploadSideJobs(
  url: string,
  token: string,
  authors: number,
  maxDepth: number,
): Promise<SideJobs> {
  const csv = (prefix: string) =>
    `Title,Author\n${Array.from({ length: authors }, (_, i) => `Book ${i},${prefix} ${String(i).padStart(5, "0")}`).join("\n")}\n`;
  const upload = async (prefix: string) => {
    const { status, json } = await call<{ jobId: string }>(
      `${url}/api/jobs?maxDepth=${maxDepth}`,
      token,
      "POST",
      csv(prefix),
    );
    if (status !== 202) throw new Error(`side job upload answered ${status}`);
    return json.jobId;
  };
  return {
    cancelId: await upload("Chaos Cancel Author"),
    pauseId: await upload("Chaos Pause Author"),
    authors,
  };
}

const view = (url: string, token: string, id: string) => call<JobView>(`${url}/api/jobs/${id}`, token);
const terminal = (v: JobView) => v.counts.total - v.counts.pending - v.counts.queued - v.counts.running;

async function waitForProgress(
  url: string,
  token: string,
  id: string,
  atLeast: number,
  log: Log,
): Promise<void> {
  const until = Date.now() + 120_000;
  while (Date.now() < until) {
    const { json } = await view(url, token, id);
    if (terminal(json) >= atLeast) return;
    await sleep(1000);
  }
  log(`job ${id} made no progress in 120 s; acting on it anyway`);
}

/**
 * Cancels one side job and pauses the other for `holdSeconds` once each has some progress. Returns the
 * failures seen on the way (a wrong answer, or the paused job moving after its in-flight batches).
 */
export async function exerciseControls(
  url: string,
  token: string,
  jobs: SideJobs,
  log: Log,
  holdSeconds = 20,
): Promise<string[]> {
  const failures: string[] = [];
  await waitForProgress(url, token, jobs.cancelId, Math.ceil(jobs.authors / 10), log);
  const cancelled = await call<JobView>(`${url}/api/jobs/${jobs.cancelId}/cancel`, token, "POST");
  log(
    `cancelled ${jobs.cancelId}: ${cancelled.status} ${cancelled.json.status} ${JSON.stringify(cancelled.json.counts)}`,
  );
  if (cancelled.status !== 200 || cancelled.json.status !== "cancelled")
    failures.push(`cancel answered ${cancelled.status} ${cancelled.json.status}`);
  const again = await call<JobView>(`${url}/api/jobs/${jobs.cancelId}/cancel`, token, "POST");
  if (again.status !== 200) failures.push(`a repeated cancel answered ${again.status}`);

  await waitForProgress(url, token, jobs.pauseId, Math.ceil(jobs.authors / 10), log);
  const paused = await call<JobView>(`${url}/api/jobs/${jobs.pauseId}/pause`, token, "POST");
  log(`paused ${jobs.pauseId}: ${paused.status} ${paused.json.status}`);
  if (paused.status !== 200 || paused.json.status !== "paused")
    failures.push(`pause answered ${paused.status} ${paused.json.status}`);
  // In-flight batches (retries with backoff, hanging requests up to the timeout) settle first.
  await sleep(6000);
  const settled = (await view(url, token, jobs.pauseId)).json;
  await sleep(Math.max(0, holdSeconds - 6) * 1000);
  const held = (await view(url, token, jobs.pauseId)).json;
  log(`paused job: ${terminal(settled)} terminal after 6 s, ${terminal(held)} after ${holdSeconds} s`);
  if (terminal(held) !== terminal(settled))
    failures.push(`the paused job moved: ${terminal(settled)} → ${terminal(held)} terminal tasks`);
  if (held.counts.failed + held.counts.dead > settled.counts.failed + settled.counts.dead)
    failures.push("tasks failed while the job was paused");
  const resumed = await call<JobView>(`${url}/api/jobs/${jobs.pauseId}/resume`, token, "POST");
  log(`resumed ${jobs.pauseId}: ${resumed.status} ${resumed.json.status}`);
  if (resumed.status !== 200 || resumed.json.status === "paused")
    failures.push(`resume answered ${resumed.status} ${resumed.json.status}`);
  return failures;
}

/** Waits until the job's Workflow has published (or failed, or the deadline came) and returns its stages. */
export async function waitForStages(
  url: string,
  token: string,
  id: string,
  deadline: number,
): Promise<JobView | null> {
  while (Date.now() < deadline) {
    const { json } = await view(url, token, id);
    const publish = json.stages.find((s) => s.stage === "publish");
    if (publish && publish.status !== "PENDING" && publish.status !== "RUNNING") return json;
    await sleep(2000);
  }
  return null;
}

/** The stage checks: every stage SUCCESS for a finished job, and the manifest served. */
export async function checkStages(
  url: string,
  token: string,
  id: string,
  v: JobView | null,
  label: string,
): Promise<string[]> {
  if (!v) return [`${label}: the Workflow did not publish before the deadline`];
  const failures: string[] = [];
  const bad = v.stages.filter((s) => s.status !== "SUCCESS");
  if (bad.length > 0)
    failures.push(
      `${label}: stages not SUCCESS: ${bad.map((s) => `${s.stage} ${s.status} ${s.message ?? ""}`).join("; ")}`,
    );
  const manifest = await call<{ kind?: string; verify?: { invariants: { ok: boolean; name: string }[] } }>(
    `${url}/api/jobs/${id}/manifest`,
    token,
  );
  if (manifest.status !== 200 || manifest.json.kind !== "manifest")
    failures.push(`${label}: manifest answered ${manifest.status}`);
  const broken = manifest.json.verify?.invariants.filter((c) => !c.ok) ?? [];
  if (broken.length > 0)
    failures.push(`${label}: verify invariants failed: ${broken.map((c) => c.name).join(", ")}`);
  return failures;
}
