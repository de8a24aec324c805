import { rowsOf, type Step } from "../step";
import { OPEN_SQL } from "../types";
import { type GenerationRow, generationRow, refsJson, type TaskRef } from "./refs";

/** Hands open tasks to fresh messages: their generation goes up, so copies of the old message are dropped. */
export function bumpGeneration(db: D1Database, refs: readonly TaskRef[], now: number): Step<GenerationRow[]> {
  const statement = db
    .prepare(
      `UPDATE tasks SET generation = generation + 1, updated_at = ?2
       FROM (SELECT value ->> 'j' AS j, value ->> 'a' AS a FROM json_each(?1)) AS m
       WHERE tasks.job_id = m.j AND tasks.author_key = m.a AND tasks.status IN ${OPEN_SQL}
       RETURNING job_id, author_key, generation`,
    )
    .bind(refsJson(refs), now);
  return { statements: [statement], read: (results) => rowsOf(generationRow, results) };
}
