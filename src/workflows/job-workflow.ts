import { WorkflowEntrypoint, type WorkflowEvent, type WorkflowStep } from "cloudflare:workers";
import { type Config, loadConfig } from "../config";
import type { StageEnd } from "../db/lifecycle/stage-transitions";
import type { JobRow } from "../db/types";
import { beginStage, decideGate, refuseStage } from "../jobs/gate";
import { runIngest } from "../jobs/ingest-stage";
import { runPublish } from "../jobs/publish-stage";
import { recordStageEnd } from "../jobs/stage-end";
import { STAGES, type Stage } from "../jobs/stages";
import { runVerify } from "../jobs/verify-stage";
import { finishWarm, readmitStalled, watchWarm } from "../jobs/warm-stage";

export interface JobWorkflowParams {
  jobId: string;
}

export interface JobWorkflowResult {
  jobId: string;
  /** The last stage reached, and how the run ended there. */
  stage: Stage;
  outcome: "SUCCESS" | "FAILED" | "STOPPED";
  reason?: string;
}

/** Steps touch only D1 and R2 and are idempotent; a transient error is retried a few times, briefly. */
const STEP = {
  retries: { limit: 3, delay: "2 seconds", backoff: "exponential" },
  timeout: "10 minutes",
} as const;

/**
 * One instance per job (instance id = job id): ingest → warm → verify → publish, each behind a gate (the
 * previous stage SUCCESS and its artifact valid). Stage state lives in D1 (job_stages), so a restarted or
 * rerun instance skips what already succeeded and an operator's cancel is seen by the next gate.
 */
export class JobWorkflow extends WorkflowEntrypoint<Env, JobWorkflowParams> {
  override async run(
    event: Readonly<WorkflowEvent<JobWorkflowParams>>,
    step: WorkflowStep,
  ): Promise<JobWorkflowResult> {
    const { jobId } = event.payload;
    const config = loadConfig(this.env);
    for (const stage of STAGES) {
      const gate = await step.do(`${stage}: gate`, STEP, async () => {
        const decision = await decideGate(this.env, jobId, stage);
        if (decision.action === "blocked") await refuseStage(this.env, jobId, stage, decision.message);
        if (decision.action === "run")
          return { ...decision, startedAt: await beginStage(this.env, jobId, stage) };
        return { ...decision, startedAt: 0 };
      });
      if (gate.action === "skip") continue;
      if (gate.action === "stop") return { jobId, stage, outcome: "STOPPED", reason: gate.reason };
      if (gate.action === "blocked") return { jobId, stage, outcome: "FAILED", reason: gate.message };
      const end = await this.runStage(stage, jobId, gate.startedAt, config, step);
      if (!end) return { jobId, stage, outcome: "STOPPED", reason: "job stopped or removed" };
      await step.do(`${stage}: end`, STEP, () => recordStageEnd(this.env, jobId, stage, end, gate.startedAt));
      if (end.status === "FAILED") return { jobId, stage, outcome: "FAILED", reason: end.message ?? "" };
    }
    return { jobId, stage: "publish", outcome: "SUCCESS" };
  }

  private async runStage(
    stage: Stage,
    jobId: string,
    startedAt: number,
    config: Config,
    step: WorkflowStep,
  ): Promise<StageEnd | null> {
    const job = () => this.env.DB.prepare("SELECT * FROM jobs WHERE id = ?1").bind(jobId).first<JobRow>();
    switch (stage) {
      case "ingest":
        return step.do("ingest: run", STEP, async () => {
          const row = await job();
          return row ? runIngest(this.env, row, config) : null;
        });
      case "warm":
        return this.warm(jobId, config, step);
      case "verify":
        return step.do("verify: run", STEP, () => runVerify(this.env, jobId, config));
      case "publish":
        return step.do("publish: run", STEP, async () => {
          const row = await job();
          return row ? runPublish(this.env, row, startedAt) : null;
        });
    }
  }

  /** The queue does the work; this watches until every task is terminal, re-admitting lost messages. */
  private async warm(jobId: string, config: Config, step: WorkflowStep): Promise<StageEnd | null> {
    let readmitted = 0;
    for (let check = 1; ; check++) {
      const watched = await step.do(`warm: check ${check}`, STEP, () => watchWarm(this.env, jobId, config));
      if (watched.state === "missing" || watched.state === "stopped") return null;
      if (watched.state === "done")
        return step.do("warm: finish", STEP, () => finishWarm(this.env, jobId, readmitted));
      if (watched.state === "stalled") {
        const sent = await step.do(`warm: readmit ${check}`, STEP, () =>
          readmitStalled(this.env, jobId, config),
        );
        readmitted += sent;
      }
    }
  }
}
