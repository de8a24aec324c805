import type { Config } from "../../config";
import { type FailureTally, failureMark, failureTallyStatement } from "../../db/tasks";
import { taskId } from "../messages";
import { type Claims, noteTallies } from "./claim";
import type { Outcome } from "./types";

/**
 * The author's own failure allowance (one try + max_retries) belongs to the task, not the message:
 * deferrals and crashes do not use it up, duplicates of one attempt count once, and the consumer decides
 * "dead" itself when the author fails its 4th attempt. Reads the tally of failed first deliveries (the
 * claim already read the others) and turns the retries that use up the allowance into `dead`.
 */
export async function applyFailureAllowance(
  db: D1Database,
  outcomes: Outcome[],
  claims: Claims,
  config: Config,
): Promise<Outcome[]> {
  const untallied = outcomes.filter((o) => o.kind === "retry" && !claims.claimed.has(taskId(o.body)));
  if (untallied.length > 0) {
    try {
      const { results } = await failureTallyStatement(
        db,
        untallied.map((o) => o.body),
      ).all<FailureTally>();
      noteTallies(claims, results);
    } catch (error) {
      // Without the tally the author's allowance is unknown: the retry counts it again next time.
      console.warn(JSON.stringify({ msg: "failure tally unavailable", error: String(error) }));
    }
  }
  return outcomes.map((outcome) => {
    if (outcome.kind !== "retry") return outcome;
    const prior = claims.tallies.get(taskId(outcome.body)) ?? { failures: 0, mark: 0 };
    const counts = failureMark(outcome.body.gen, outcome.attempt) > prior.mark ? 1 : 0;
    if (prior.failures + counts < config.MAX_DELIVERIES) return outcome;
    return { kind: "dead", body: outcome.body, code: outcome.code, message: outcome.message };
  });
}
