import type { Config } from "../config";
import { completeJobsStatement, listUnfinishedJobIds } from "../db/jobs";
import { runSteps } from "../db/step";
import { finishTasks, listExhaustedTasks, markQueued, takeStalledTasks } from "../db/tasks";
import { admitPending } from "./admission";
import { sendWarmMessages, warmMessageFor, warmQueues } from "./messages";
import { failPoisonTasks } from "./poison";

export interface SweepReport {
  /** Lost messages of admitted tasks sent again. */
  resent: number;
  /** Pending tasks admitted (the safety net behind the consumer's and the warm stage's passes). */
  admitted: number;
  markedDead: number;
  poisoned: number;
  jobsChecked: number;
  /** Phases that threw; the others still ran. */
  errors: string[];
}

const SWEEP_LIMIT = 1000;

/**
 * The cron sweep, so nothing is lost between the platform's pieces:
 * - tasks that used up every delivery but were never marked dead (dead-letter consumer lost) become dead;
 * - admitted tasks of a job where nothing has moved for STALL_SECONDS (messages lost) are sent again;
 * - pending tasks are admitted, within their job's window and the global cap (src/warm/admission.ts);
 * - jobs with no open task left are completed.
 * Each phase runs on its own: one failing (or one task that cannot become a message) never stops the rest.
 */
export async function sweep(env: Env, deps: { config: Config; now: () => number }): Promise<SweepReport> {
  const now = deps.now();
  const report: SweepReport = {
    resent: 0,
    admitted: 0,
    markedDead: 0,
    poisoned: 0,
    jobsChecked: 0,
    errors: [],
  };
  const phase = async (name: string, run: () => Promise<void>) => {
    try {
      await run();
    } catch (error) {
      report.errors.push(`${name}: ${String(error)}`);
      console.error(JSON.stringify({ msg: "sweep phase failed", phase: name, error: String(error) }));
    }
  };
  // First settle what can never be delivered again, so the re-sends below do not revive it.
  await phase("exhausted", async () => {
    report.markedDead = await settleExhausted(env.DB, deps.config, now);
  });
  await phase("resend", async () => {
    const stale = await takeStalledTasks(env.DB, now, deps.config.STALL_SECONDS, SWEEP_LIMIT);
    if (stale.length === 0) return;
    const result = await sendWarmMessages(warmQueues(env), stale.map(warmMessageFor));
    report.poisoned = await failPoisonTasks(env.DB, result.invalid, now);
    if (result.sent.length > 0) await runSteps(env.DB, [markQueued(env.DB, result.sent, now)]);
    report.resent = result.sent.length;
  });
  // After the re-sends, so a window that only looked full (lost messages) is counted as it is.
  await phase("admit", async () => {
    const admitted = await admitPending(env, deps.config, now);
    report.admitted = admitted.sent;
    report.poisoned += admitted.poisoned;
  });
  await phase("complete", async () => {
    const jobIds = await listUnfinishedJobIds(env.DB, SWEEP_LIMIT);
    await env.DB.batch([completeJobsStatement(env.DB, jobIds, now)]);
    report.jobsChecked = jobIds.length;
  });
  console.log(JSON.stringify({ msg: "sweep", ...report }));
  return report;
}

async function settleExhausted(db: D1Database, config: Config, now: number): Promise<number> {
  const exhausted = await listExhaustedTasks(
    db,
    config.MAX_DELIVERIES,
    config.MAX_TOTAL_ATTEMPTS,
    now - config.EXHAUSTED_GRACE_SECONDS * 1000,
    SWEEP_LIMIT,
  );
  if (exhausted.length === 0) return 0;
  const dead = exhausted.map((t) => ({ ...t, status: "dead" as const, error: null }));
  await runSteps(db, [finishTasks(db, dead, now)]);
  return exhausted.length;
}
