import type { Config } from "../config";
import { insertWarmEventStatement } from "../db/events";
import { completeJobsStatement, deadLetterCountStatement } from "../db/jobs";
import { runSteps, type Step, writeOnly } from "../db/step";
import {
  bumpGeneration,
  type DeadLetterCheck,
  deadLetterTasksStatement,
  finishTasks,
  type TerminalOutcome,
} from "../db/tasks";
import { TERMINAL_TASK_STATUSES } from "../db/types";
import { UpstreamTally } from "../sources/tally";
import { retryDelaySeconds } from "./backoff";
import {
  sendWarmMessages,
  taskId,
  type WarmMessage,
  warmMessageFor,
  warmMessageSchema,
  warmQueues,
} from "./messages";
import { emptyMetrics, writeAnalyticsPoint } from "./metrics";
import { failPoisonTasks } from "./poison";

/**
 * The dead-letter queue's consumer: a message lands here once the warm queue gave up retrying it.
 *
 * The platform counts every delivery, including ones lost to a consumer crash (a throw retries the whole
 * batch, innocent messages too). Dead means the author itself failed its allowance: a task is marked dead
 * when it recorded MAX_DELIVERIES failures of its own, or after MAX_TOTAL_ATTEMPTS deliveries of any
 * kind; otherwise a fresh copy goes back to the warm queue. Dead tasks keep their last error.
 */
export async function handleDeadLetterBatch(
  batch: MessageBatch<unknown>,
  env: Env,
  deps: { config: Config; now: () => number },
): Promise<void> {
  const startedAt = deps.now();
  const refs = new Map<string, { jobId: string; authorKey: string }>();
  for (const message of batch.messages) {
    const parsed = warmMessageSchema.safeParse(message.body);
    if (!parsed.success) continue;
    refs.set(taskId(parsed.data), parsed.data);
  }
  const metrics = emptyMetrics(batch);
  try {
    const tasks =
      refs.size === 0
        ? []
        : ((await deadLetterTasksStatement(env.DB, [...refs.values()]).all<DeadLetterCheck>()).results ?? []);
    const open = tasks.filter((t) => !(TERMINAL_TASK_STATUSES as readonly string[]).includes(t.status));
    const dead: TerminalOutcome[] = [];
    const again: WarmMessage[] = [];
    for (const task of open) {
      if (task.failures >= deps.config.MAX_DELIVERIES || task.attempts >= deps.config.MAX_TOTAL_ATTEMPTS) {
        dead.push({ jobId: task.job_id, authorKey: task.author_key, status: "dead", error: null });
      } else {
        again.push(warmMessageFor(task));
      }
    }
    metrics.failed = dead.length;
    metrics.retried = again.length;
    if (again.length > 0) {
      // Bump first and send the generation the bump returned: a racing warm consumer cannot leave both
      // copies stale.
      const [bumped] = await runSteps(env.DB, [bumpGeneration(env.DB, again, deps.now())]);
      const current = new Map(
        bumped.map((r) => [taskId({ jobId: r.job_id, authorKey: r.author_key }), r.generation]),
      );
      const fresh = again.flatMap((m) => {
        const gen = current.get(taskId(m));
        return gen === undefined ? [] : [{ ...m, gen }];
      });
      const delaySeconds = retryDelaySeconds({
        attempt: 1,
        baseSeconds: deps.config.RETRY_BASE_SECONDS,
        maxSeconds: deps.config.RETRY_MAX_SECONDS,
      });
      const sent = await sendWarmMessages(warmQueues(env), fresh, { delaySeconds });
      await failPoisonTasks(env.DB, sent.invalid, deps.now());
      if (sent.unsent.length > 0) throw new Error(`could not re-send ${sent.unsent.length} dead letters`);
      console.log(
        JSON.stringify({
          msg: "dead letters re-sent: their authors had not failed on their own",
          count: fresh.length,
        }),
      );
    }
    const jobIds = [...new Set(tasks.map((t) => t.job_id))];
    metrics.durationMs = deps.now() - startedAt;
    const [, , , deadLetters] = await runSteps(env.DB, [
      finishTasks(env.DB, dead, deps.now()),
      writeOnly([completeJobsStatement(env.DB, jobIds, deps.now())]),
      writeOnly([insertWarmEventStatement(env.DB, metrics, deps.now())]),
      deadLetterCount(env.DB),
    ]);
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
  writeAnalyticsPoint(env, metrics, new UpstreamTally());
}

/** How many dead letters all jobs hold, read in the same batch that records this one's. */
function deadLetterCount(db: D1Database): Step<number> {
  return {
    statements: [deadLetterCountStatement(db)],
    read: (results) => Number((results[0]?.results[0] as { n?: unknown } | undefined)?.n ?? 0),
  };
}
