import { cacheKeys } from "../../../src/cache/keys";
import type { AuthorWorksEntry } from "../../../src/cache/reader";
import { getJob } from "../../../src/db/jobs";
import type { JobRow } from "../../../src/db/types";
import { mapWithConcurrency } from "../../../src/lib/budget";

export interface JobAudit {
  job: JobRow | null;
  /** Task rows per state (the truth). */
  taskCounts: Record<string, number>;
  /** Problems that would mean something was lost or counted twice. */
  counterMismatches: string[];
  tasks: { authorKey: string; authorName: string; status: string; depth: number }[];
  /** Done authors in [offset, offset+limit) whose works or marker are missing. */
  incompleteDone: { authorKey: string; missing: string[] }[];
  doneChecked: number;
  doneTotal: number;
}

/**
 * Audits a job for the chaos soak: every task's state, the job counters against the rows, and for a
 * page of done authors their processed marker, their works list in KV and their rows in D1.
 */
export async function auditJob(
  env: Env,
  jobId: string,
  page: { offset: number; limit: number },
): Promise<JobAudit> {
  const job = await getJob(env.DB, jobId);
  const { results: tasks } = await env.DB.prepare(
    "SELECT author_key, author_name, status, depth, works_count FROM tasks WHERE job_id = ?1 ORDER BY author_key",
  )
    .bind(jobId)
    .all<{
      author_key: string;
      author_name: string;
      status: string;
      depth: number;
      works_count: number | null;
    }>();
  const taskCounts: Record<string, number> = {};
  for (const t of tasks) taskCounts[t.status] = (taskCounts[t.status] ?? 0) + 1;
  const counterMismatches: string[] = [];
  if (job) {
    const pairs: [string, number, number][] = [
      ["done", job.done_count, taskCounts.done ?? 0],
      ["skipped", job.skipped_count, taskCounts.skipped ?? 0],
      ["failed", job.failed_count, taskCounts.failed ?? 0],
      ["dead", job.dead_count, taskCounts.dead ?? 0],
      ["cancelled", job.cancelled_count, taskCounts.cancelled ?? 0],
      ["total", job.total_tasks, tasks.length],
    ];
    for (const [name, counter, rows] of pairs) {
      if (counter !== rows) counterMismatches.push(`${name}: job counter ${counter} but ${rows} task rows`);
    }
  }
  const done = tasks.filter((t) => t.status === "done");
  const slice = done.slice(page.offset, page.offset + page.limit);
  const checks = await mapWithConcurrency(slice, 20, async (t) => {
    const missing: string[] = [];
    const [marker, list, rows] = await Promise.all([
      env.CACHE.get(cacheKeys.processedMarker(t.author_name)),
      env.CACHE.get<AuthorWorksEntry>(cacheKeys.authorWorks(t.author_name), "json"),
      env.DB.prepare("SELECT COUNT(*) AS n FROM author_works WHERE author_key = ?1")
        .bind(t.author_key)
        .first<{ n: number }>(),
    ]);
    const expected = t.works_count ?? 0;
    if (marker === null) missing.push("processed marker");
    if (!list) missing.push("KV works list");
    else if (list.works.length !== expected)
      missing.push(`KV works list has ${list.works.length}, task says ${expected}`);
    if ((rows?.n ?? 0) < expected) missing.push(`D1 has ${rows?.n ?? 0} works, task says ${expected}`);
    return { authorKey: t.author_key, missing };
  });
  return {
    job,
    taskCounts,
    counterMismatches,
    tasks: tasks.map((t) => ({
      authorKey: t.author_key,
      authorName: t.author_name,
      status: t.status,
      depth: t.depth,
    })),
    incompleteDone: checks.filter((c) => c.missing.length > 0),
    doneChecked: slice.length,
    doneTotal: done.length,
  };
}
