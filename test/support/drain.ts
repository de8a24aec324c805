import { env } from "cloudflare:workers";
import { upstream } from "./upstream";

/**
 * Work a test started through the real local queues outlives the test unless it is waited for: the queue
 * consumer would fetch and write after the next test's `resetAll`. Tests (through `call`, and consumer
 * batches through `trackingEnv`) record what they sent; `drainQueues` waits until none of it is open.
 */
const trackedJobs = new Set<string>();
const trackedTasks = new Set<string>();
/** Jobs with a tracked task: their co-author tasks were fanned out through the real queue too. */
const fannedOutJobs = new Set<string>();

const taskKey = (jobId: string, authorKey: string) => `${jobId}\u0000${authorKey}`;

/** Every task of this job was handed to the real queue (an upload, a redrive). */
export function trackJob(jobId: string): void {
  trackedJobs.add(jobId);
}

/** These messages went to the real queue: their tasks must close before the test is over. */
export function trackMessages(bodies: readonly unknown[]): void {
  for (const body of bodies) {
    const b = body as { jobId?: unknown; authorKey?: unknown } | null;
    if (typeof b?.jobId === "string" && typeof b.authorKey === "string") {
      trackedTasks.add(taskKey(b.jobId, b.authorKey));
      fannedOutJobs.add(b.jobId);
    }
  }
}

/** A queue that records what is sent through it before passing it on. */
export function trackingQueue<T>(queue: Queue<T>): Queue<T> {
  return {
    send: (body: T, options?: QueueSendOptions) => {
      trackMessages([body]);
      return queue.send(body, options);
    },
    sendBatch: (messages: Iterable<MessageSendRequest<T>>, options?: QueueSendBatchOptions) => {
      const list = [...messages];
      trackMessages(list.map((m) => m.body));
      return queue.sendBatch(list, options);
    },
  } as Queue<T>;
}

/** The bindings with the warm queues tracked: pass it to a consumer batch that may send (fan-out, deferrals). */
export function trackingEnv(base: Env = env): Env {
  return {
    ...base,
    WARM_QUEUE: trackingQueue(base.WARM_QUEUE),
    ISBN_QUEUE: trackingQueue(base.ISBN_QUEUE),
    PRIORITY_QUEUE: trackingQueue(base.PRIORITY_QUEUE),
  };
}

interface OpenTask {
  job_id: string;
  author_key: string;
  depth: number;
  status: string;
}

/**
 * Open tasks with a message in the real queue, or about to get one: every queued or running task of a
 * tracked job, and its pending ones while the job runs (admission sends them), tracked tasks, and the
 * co-author tasks (depth ≥ 1) of their jobs, which the consumer writes `pending` and admits.
 */
export async function tasksInFlight(): Promise<OpenTask[]> {
  // A pending task of a running job is admitted by the consumer or the job's warm stage: it will get a
  // message too. One of a paused job waits for a resume, which only the test can give. A job whose ingest
  // has not yet written its tasks stands for them as one row.
  const { results } = await env.DB.prepare(
    `SELECT t.job_id, t.author_key, t.depth, t.status FROM tasks AS t JOIN jobs AS j ON j.id = t.job_id
     WHERE t.status IN ('queued', 'running')
        OR (t.status = 'pending' AND j.status IN ('queued', 'running'))
     UNION ALL
     SELECT id, '(tasks not written yet)', 0, 'pending' FROM jobs
     WHERE roots_written = 0 AND status IN ('queued', 'running')`,
  ).all<OpenTask>();
  return results.filter(
    (t) =>
      trackedJobs.has(t.job_id) ||
      trackedTasks.has(taskKey(t.job_id, t.author_key)) ||
      (t.depth >= 1 && fannedOutJobs.has(t.job_id)),
  );
}

/** A whole upload at maxDepth 2 (a couple of hundred authors and their co-authors) fits in this. */
export const DRAIN_TIMEOUT_MS = 100_000;

/** Waits until nothing a test sent through the real queue is still open, and upstream has gone quiet. */
export async function drainQueues(timeoutMs = DRAIN_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  try {
    let quietSince = -1;
    let lastTotal = -1;
    for (;;) {
      const open = await tasksInFlight();
      const total = upstream.stats().total;
      if (open.length === 0 && total === lastTotal) {
        // Markers and the consumer's last writes land just after the task closes: one more quiet beat.
        if (quietSince >= 0 && Date.now() - quietSince >= 150) return;
        if (quietSince < 0) quietSince = Date.now();
      } else quietSince = -1;
      lastTotal = total;
      if (Date.now() > deadline) {
        throw new Error(
          `the test left work in the real queue that did not finish in ${timeoutMs} ms: ${JSON.stringify(open.slice(0, 5))} (${open.length} open)`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    trackedJobs.clear();
    trackedTasks.clear();
    fannedOutJobs.clear();
  }
}
