/** One row per consumer invocation: the local stand-in for Analytics Engine, read by the dashboard. */
export interface WarmEvent {
  queue: string;
  messages: number;
  done: number;
  skipped: number;
  failed: number;
  retried: number;
  works: number;
  subrequests: number;
  durationMs: number;
}

export function insertWarmEventStatement(db: D1Database, event: WarmEvent, now: number): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO warm_events (at, queue, messages, done, skipped, failed, retried, works, subrequests, duration_ms)
       VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)`,
    )
    .bind(
      now,
      event.queue,
      event.messages,
      event.done,
      event.skipped,
      event.failed,
      event.retried,
      event.works,
      event.subrequests,
      event.durationMs,
    );
}
