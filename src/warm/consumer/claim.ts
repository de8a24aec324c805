import { runSteps } from "../../db/step";
import { claimTasks, type FailureTally } from "../../db/tasks";
import { taskId } from "../messages";
import type { Delivery, Intake } from "./intake";

/** How often an author already failed: its count and the mark of its last counted failure. */
export interface Tally {
  failures: number;
  mark: number;
}

/** What this invocation knows of its tasks beyond the messages. */
export interface Claims {
  /** Tasks moved to `running` by the claim (their attempt is already counted). */
  claimed: Set<string>;
  tallies: Map<string, Tally>;
  /** The generation each task has now, where a statement told us. */
  generations: Map<string, number>;
}

export function noteTallies(claims: Claims, rows: readonly FailureTally[]): void {
  for (const r of rows) {
    claims.tallies.set(taskId({ jobId: r.job_id, authorKey: r.author_key }), {
      failures: Number(r.failures),
      mark: Number(r.failure_mark),
    });
  }
}

/**
 * Claims what may be a second copy: a redelivery (attempts > 1) or a re-sent message (gen > 0) moves its
 * task to running, and one whose task is closed or has moved on to a newer message is acked unworked before
 * it costs an upstream request. A first delivery goes straight to work: its outcome is written under a
 * generation guard (an obsolete copy's write changes nothing), so the happy path costs one D1 batch, and a
 * rare duplicate first delivery costs the providers a second fetch, never a double count.
 * Throws when D1 cannot be reached (the caller retries the batch).
 */
export async function claimSuspects(env: Env, intake: Intake, now: number): Promise<Claims> {
  const claims: Claims = { claimed: new Set(), tallies: new Map(), generations: new Map() };
  const suspects = intake.deliveries.filter((d) => d.message.attempts > 1 || d.body.gen > 0);
  if (suspects.length === 0) return claims;
  const [rows] = await runSteps(env.DB, [
    claimTasks(
      env.DB,
      suspects.map((d) => d.body),
      now,
    ),
  ]);
  noteTallies(claims, rows);
  for (const r of rows) {
    const id = taskId({ jobId: r.job_id, authorKey: r.author_key });
    claims.claimed.add(id);
    claims.generations.set(id, r.generation);
  }
  for (const { body } of suspects) if (!claims.claimed.has(taskId(body))) intake.drop(taskId(body));
  return claims;
}

/** The deliveries with the author's own failures where the claim read them: what grouping splits by. */
export function withFailures(deliveries: readonly Delivery[], claims: Claims): Delivery[] {
  return deliveries.map((d) => {
    const tally = claims.tallies.get(taskId(d.body));
    return tally === undefined ? d : { ...d, failures: tally.failures };
  });
}
