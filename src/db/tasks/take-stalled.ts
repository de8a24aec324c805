import { MESSAGE_COLUMNS, type StaleTask, staleTaskRow } from "./queries";

/**
 * Open tasks of jobs where nothing has moved for `stallSeconds`: their messages were lost (a local
 * queue restart, a platform incident). Their `updated_at` is touched so the next sweep waits again.
 */
export async function takeStalledTasks(
  db: D1Database,
  now: number,
  stallSeconds: number,
  limit: number,
): Promise<StaleTask[]> {
  const cutoff = now - stallSeconds * 1000;
  const { results } = await db
    .prepare(
      `UPDATE tasks SET updated_at = ?2
       FROM (SELECT t.job_id AS j, t.author_key AS a FROM tasks AS t JOIN jobs ON jobs.id = t.job_id
             WHERE jobs.status IN ('queued', 'running') AND t.status IN ('queued', 'running')
               AND NOT EXISTS (SELECT 1 FROM tasks AS recent WHERE recent.job_id = t.job_id AND recent.updated_at >= ?1)
             LIMIT ?3) AS m
       WHERE tasks.job_id = m.j AND tasks.author_key = m.a
       RETURNING ${MESSAGE_COLUMNS}`,
    )
    .bind(cutoff, now, limit)
    .all();
  return results.map((row) => staleTaskRow.parse(row));
}
