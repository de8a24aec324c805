/** The job's read-link version (null when the job does not exist). */
export async function readLinkVersion(db: D1Database, jobId: string): Promise<number | null> {
  const row = await db
    .prepare("SELECT read_link_version AS v FROM jobs WHERE id = ?1")
    .bind(jobId)
    .first<{ v: number }>();
  return row ? Number(row.v) : null;
}

/** Revokes the job's read link by moving to the next version; returns it (null: no such job). */
export async function bumpReadLinkVersion(db: D1Database, jobId: string): Promise<number | null> {
  const row = await db
    .prepare(
      "UPDATE jobs SET read_link_version = read_link_version + 1 WHERE id = ?1 RETURNING read_link_version AS v",
    )
    .bind(jobId)
    .first<{ v: number }>();
  return row ? Number(row.v) : null;
}
