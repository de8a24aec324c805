import { z } from "zod";
import { prioritySchema } from "../sources/grant-scheduler";
import { rowsOf, type Step } from "./step";

// An unknown priority (none of the three) is served as normal rather than failing the batch.
const jobStateRow = z.object({
  id: z.string(),
  status: z.string(),
  priority: prioritySchema.catch("normal"),
});
export type JobStateRow = z.infer<typeof jobStateRow>;

/** The status and priority of each of these jobs (the consumer's job-state check): one read. */
export function readJobStates(db: D1Database, jobIds: readonly string[]): Step<JobStateRow[]> {
  return {
    statements: [
      db
        .prepare("SELECT id, status, priority FROM jobs WHERE id IN (SELECT value FROM json_each(?1))")
        .bind(JSON.stringify(jobIds)),
    ],
    read: (results) => rowsOf(jobStateRow, results),
  };
}
