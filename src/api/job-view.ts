import { getJobProgress } from "../db/jobs";
import { currentStage, listStages, stageRecord } from "../db/lifecycle/stages";
import { runSteps } from "../db/step";
import { jobCounters } from "../db/usage";
import { notFound } from "../errors";
import { describeCost } from "../jobs/cost";
import type { JobView } from "./job-responses";
import { describeProgress } from "./progress";

/** GET /api/jobs/:id's answer: the progress, the current stage, every stage's status and the job's cost. */
export async function jobView(db: D1Database, jobId: string): Promise<JobView> {
  const [progress, [rows], counters] = await Promise.all([
    getJobProgress(db, jobId),
    runSteps(db, [listStages(db, jobId)]),
    jobCounters(db, jobId),
  ]);
  if (!progress) throw notFound("Job", jobId);
  const current = currentStage(rows);
  return {
    ...describeProgress(progress.job, progress.counts, Date.now(), progress.isbnCounts),
    stage: current ? { name: current.stage, status: current.status } : null,
    stages: rows.map(stageRecord),
    cost: describeCost(counters),
  };
}
