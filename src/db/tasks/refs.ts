import { z } from "zod";

/** One task: a work item of a job. */
export interface TaskRef {
  jobId: string;
  authorKey: string;
}

/** How a consumer outcome is guarded and counted; both absent for the sweeper's and DLQ's own verdicts. */
export interface DeliveryGuard {
  /** The message's generation: the row moves only if it is still the task's current one. */
  gen?: number;
  /** The delivery was not claimed (a first delivery), so this write counts its attempt. */
  countAttempt?: boolean;
}

/** SQL over a json_each row `m` (alias given) and a task row: no generation given, or the task's current one. */
export const currentGeneration = (generation: string, task: string) =>
  `(${generation} IS NULL OR ${task}.generation = ${generation})`;

/** The JSON list of (job, author) pairs statements join against. */
export function refsJson(refs: readonly TaskRef[]): string {
  return JSON.stringify(refs.map((r) => ({ j: r.jobId, a: r.authorKey })));
}

/** A task reference as RETURNING gives it back. */
export const refRow = z.object({ job_id: z.string(), author_key: z.string() });

/** A task and the generation it has now. */
export const generationRow = refRow.extend({ generation: z.coerce.number() });
export type GenerationRow = z.infer<typeof generationRow>;

/** Identifies one delivery attempt of one message generation (attempts stay far below 1,000). */
export function failureMark(generation: number, attempt: number): number {
  return generation * 1000 + Math.min(attempt, 999);
}
