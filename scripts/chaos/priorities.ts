/**
 * The chaos soak's priority part (#13): a small `high` job runs beside the main `normal` job under the same
 * faults; afterwards every invariant the main job is held to is checked for it too, and each job's stored
 * priority and time to finish are recorded.
 */

export interface PriorityJob {
  jobId: string;
  authors: number;
  uploadedAt: number;
}

/** Uploads `authors` authors ("Chaos High Author 00000" …) at priority high. */
export async function uploadHighJob(
  url: string,
  token: string,
  authors: number,
  maxDepth: number,
): Promise<PriorityJob> {
  const csv = `Title,Author\n${Array.from({ length: authors }, (_, i) => `Book ${i},Chaos High Author ${String(i).padStart(5, "0")}`).join("\n")}\n`;
  const uploadedAt = Date.now();
  const response = await fetch(`${url}/api/jobs?maxDepth=${maxDepth}&priority=high`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "text/csv" },
    body: csv,
  });
  const text = await response.text();
  if (response.status !== 202)
    throw new Error(`high job upload answered ${response.status}: ${text.slice(0, 300)}`);
  return { jobId: (JSON.parse(text) as { jobId: string }).jobId, authors, uploadedAt };
}

/** The stored priority each job reports must be the one it was uploaded with. */
export function priorityMismatches(
  jobs: readonly { label: string; wanted: string; reported: string | undefined }[],
): string[] {
  return jobs
    .filter((j) => j.reported !== j.wanted)
    .map((j) => `${j.label}: priority is ${j.reported ?? "unknown"}, uploaded as ${j.wanted}`);
}
