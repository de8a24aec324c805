import { z } from "zod";
import { rowsOf, type Step, writeOnly } from "../step";

export type LogType = "stage_start" | "stage_end" | "gate_failed" | "readmitted" | "operator" | "error";

export interface LogEntry {
  type: LogType;
  stage?: string | null;
  data?: Record<string, unknown>;
}

/** Appends lines to a job's log (job_log): part of whatever batch makes the change it describes. */
export function appendLog(db: D1Database, jobId: string, entry: LogEntry, now: number) {
  return writeOnly([
    db
      .prepare("INSERT INTO job_log (job_id, at, type, stage, data) VALUES (?1, ?2, ?3, ?4, ?5)")
      .bind(jobId, now, entry.type, entry.stage ?? null, entry.data ? JSON.stringify(entry.data) : null),
  ]);
}

const logRow = z.object({
  id: z.number(),
  at: z.number(),
  type: z.string(),
  stage: z.string().nullable(),
  data: z.string().nullable(),
});

export interface LogLine {
  id: number;
  at: string;
  type: string;
  stage: string | null;
  [key: string]: unknown;
}

/** The job's log lines after `since` (the last id a reader saw), oldest first. */
export function readLog(db: D1Database, jobId: string, since: number, limit: number): Step<LogLine[]> {
  return {
    statements: [
      db
        .prepare("SELECT * FROM job_log WHERE job_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3")
        .bind(jobId, since, limit),
    ],
    read: (results) =>
      rowsOf(logRow, results).map((r) => ({
        ...(r.data ? (JSON.parse(r.data) as Record<string, unknown>) : {}),
        id: r.id,
        at: new Date(r.at).toISOString(),
        type: r.type,
        stage: r.stage,
      })),
  };
}
