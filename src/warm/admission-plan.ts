import { PRIORITY_WEIGHTS, type Priority } from "../config";

/** A running job as admission sees it: its weight, what it has in flight and what is waiting. */
export interface AdmissionCandidate {
  jobId: string;
  priority: string;
  /** Tasks `queued` or `running`. */
  inFlight: number;
  /** Tasks `pending` (may be capped at the window: more than a window is never admitted at once). */
  pending: number;
  /** Creation time: among equals, the older job goes first. */
  createdAt: number;
}

export interface AdmissionLimits {
  /** At most this many of one job's tasks in flight. */
  window: number;
  /** At most this many tasks in flight across every running job. */
  globalCap: number;
}

/** Unknown priorities (none are stored: the upload validates them) weigh as `normal`. */
export function weightOf(priority: string): number {
  return PRIORITY_WEIGHTS[priority as Priority] ?? PRIORITY_WEIGHTS.normal;
}

/**
 * Priority-weighted round robin over the running jobs, one slot at a time: each slot goes to the job whose
 * next task would have the least in flight per unit of weight ((in flight + 1) / weight; ties: the heavier,
 * then the older job), among jobs with room in their window and tasks waiting. From a standing start a
 * `high`, a `normal` and a `low` job get slots in the order H H N H H N L (4 : 2 : 1), and as slots free up
 * one at a time they go to whichever job is furthest below its weighted share: no job starves, and a new
 * job gets the next free slots. Returns the job ids in the order their slots were given (a job once per slot).
 */
export function admissionOrder(
  jobs: readonly AdmissionCandidate[],
  { window, globalCap }: AdmissionLimits,
): string[] {
  const totalInFlight = jobs.reduce((sum, j) => sum + Math.max(0, j.inFlight), 0);
  let free = Math.max(0, Math.floor(globalCap) - totalInFlight);
  const state = jobs
    .map((j) => ({
      job: j,
      weight: weightOf(j.priority),
      held: Math.max(0, j.inFlight),
      room: Math.max(0, Math.min(Math.floor(window) - j.inFlight, j.pending)),
    }))
    .filter((s) => s.room > 0);
  const order: string[] = [];
  while (free > 0) {
    let best: (typeof state)[number] | undefined;
    for (const s of state) {
      if (s.room <= 0) continue;
      if (!best || before(s, best)) best = s;
    }
    if (!best) break;
    best.held++;
    best.room--;
    free--;
    order.push(best.job.jobId);
  }
  return order;
}

type Slot = { job: AdmissionCandidate; weight: number; held: number };

function before(a: Slot, b: Slot): boolean {
  // Compare (held + 1) / weight without division: exact for integer counts and weights.
  const left = (a.held + 1) * b.weight;
  const right = (b.held + 1) * a.weight;
  if (left !== right) return left < right;
  if (a.weight !== b.weight) return a.weight > b.weight;
  if (a.job.createdAt !== b.job.createdAt) return a.job.createdAt < b.job.createdAt;
  return a.job.jobId < b.job.jobId;
}

/** How many tasks each job may have admitted now (jobs with none are left out), in first-slot order. */
export function allocateAdmissions(
  jobs: readonly AdmissionCandidate[],
  limits: AdmissionLimits,
): { jobId: string; count: number }[] {
  const counts = new Map<string, number>();
  for (const id of admissionOrder(jobs, limits)) counts.set(id, (counts.get(id) ?? 0) + 1);
  return [...counts].map(([jobId, count]) => ({ jobId, count }));
}
