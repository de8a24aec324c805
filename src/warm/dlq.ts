import type { Config } from "../config";
import { insertWarmEventStatement } from "../db/events";
import { completeJobsStatement, deadLetterCountStatement } from "../db/jobs";
import { finishTasksStatements, type TerminalOutcome } from "../db/tasks";
import { warmMessageSchema } from "./messages";
import { writeAnalyticsPoint } from "./metrics";

/**
 * The dead-letter queue's consumer: a message lands here once the warm queue gave up retrying it.
 * Its task becomes `dead`, keeping the last error the warm consumer recorded.
 */
export async function handleDeadLetterBatch(
  batch: MessageBatch<unknown>,
  env: Env,
  deps: { config: Config; now: () => number },
): Promise<void> {
  const startedAt = deps.now();
  const outcomes = new Map<string, TerminalOutcome>();
  for (const message of batch.messages) {
    const parsed = warmMessageSchema.safeParse(message.body);
    if (!parsed.success) continue;
    const { jobId, authorKey } = parsed.data;
    outcomes.set(`${jobId}\u0000${authorKey}`, { jobId, authorKey, status: "dead", error: null });
  }
  const jobIds = [...new Set([...outcomes.values()].map((o) => o.jobId))];
  const metrics = {
    queue: batch.queue,
    messages: batch.messages.length,
    done: 0,
    skipped: 0,
    failed: outcomes.size,
    retried: 0,
    works: 0,
    subrequests: 0,
    durationMs: 0,
  };
  try {
    const results = await env.DB.batch([
      ...finishTasksStatements(env.DB, [...outcomes.values()], deps.now()),
      completeJobsStatement(env.DB, jobIds, deps.now()),
      insertWarmEventStatement(env.DB, metrics, deps.now()),
      deadLetterCountStatement(env.DB),
    ]);
    const deadLetters = Number((results.at(-1)?.results[0] as { n: number } | undefined)?.n ?? 0);
    if (deadLetters > deps.config.DLQ_ALERT_THRESHOLD) {
      console.warn(
        JSON.stringify({
          msg: "dead-letter count above threshold",
          deadLetters,
          threshold: deps.config.DLQ_ALERT_THRESHOLD,
          hint: "inspect GET /api/jobs/:id/failures and redrive with POST /api/jobs/:id/retry",
        }),
      );
    }
    for (const message of batch.messages) message.ack();
  } catch (error) {
    console.error(JSON.stringify({ msg: "dead-letter batch not recorded, retrying", error: String(error) }));
    for (const message of batch.messages) message.retry({ delaySeconds: 5 });
  }
  metrics.durationMs = deps.now() - startedAt;
  writeAnalyticsPoint(env, metrics);
}
