/** Written in a refresh job's creation batch, after its row: the job list and progress show the kind. */
export function markRefreshJobStatement(db: D1Database, jobId: string): D1PreparedStatement {
  return db.prepare("UPDATE jobs SET kind = 'refresh' WHERE id = ?1").bind(jobId);
}
