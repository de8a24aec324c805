import type { z } from "zod";

/**
 * The statements of one state change and the decoder of exactly their results. Steps are run together in
 * one D1 batch (one round trip, one transaction) by `runSteps`, which hands each step its own results: no
 * caller decodes by position.
 */
export interface Step<T> {
  statements: D1PreparedStatement[];
  read(results: readonly D1Result[]): T;
}

/** A step whose results say nothing the caller needs (counter updates, inserts without RETURNING). */
export function writeOnly(statements: D1PreparedStatement[]): Step<void> {
  return { statements, read: () => undefined };
}

type Results<S extends readonly Step<unknown>[]> = { [K in keyof S]: S[K] extends Step<infer T> ? T : never };

/** D1's rows read and written, summed from the results' meta (what D1 bills). */
export interface RowMeter {
  rowsRead: number;
  rowsWritten: number;
}

/**
 * Runs the steps as one D1 batch and returns each step's decoded results, in the order given; `meter`, if
 * given, is told the batch's rows read and written.
 */
export async function runSteps<const S extends readonly Step<unknown>[]>(
  db: D1Database,
  steps: S,
  meter?: RowMeter,
): Promise<Results<S>> {
  const statements = steps.flatMap((s) => s.statements);
  const results = statements.length > 0 ? await db.batch(statements) : [];
  if (meter)
    for (const r of results) {
      meter.rowsRead += Number(r.meta?.rows_read ?? 0);
      meter.rowsWritten += Number(r.meta?.rows_written ?? 0);
    }
  let offset = 0;
  return steps.map((s) => {
    const own = results.slice(offset, offset + s.statements.length);
    offset += s.statements.length;
    return s.read(own);
  }) as Results<S>;
}

/** The rows of some results, each checked against the shape the SQL promises. */
export function rowsOf<T>(schema: z.ZodType<T>, results: readonly (D1Result | undefined)[]): T[] {
  return results.flatMap((r) => (r?.results ?? []).map((row) => schema.parse(row)));
}
