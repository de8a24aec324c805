/**
 * Follows a job: polls GET /api/jobs/:id (with the API token, which job reads need) until the job is
 * finished, the deadline passes or the signal fires. The one poll loop of the warm CLI (and so the demo),
 * the bench and the chaos soak; each keeps its own log lines in onProgress and onFailure.
 */
import type { JobProgress } from "../../src/api/job-responses.ts";
import { errorMessage } from "./processes.ts";
import { sleep } from "./sleep.ts";

/** Job statuses after which nothing more happens to the job (until a redrive). */
export const FINISHED: ReadonlySet<JobProgress["status"]> = new Set(["completed", "completed_with_errors"]);

/** A poll that brought no progress: the request failed, or the API answered something else. */
export interface PollFailure {
  /** The HTTP status, when the API answered. */
  status?: number;
  /** The answer's body: its JSON, or its first 300 characters when it is not JSON. */
  body?: unknown;
  /** What fetch threw (unreachable, the per-request timeout), when it threw. */
  error?: unknown;
  /** One line: `GET URL → STATUS: BODY` or the error's message. */
  message: string;
}

export interface PollJobOptions {
  /** What to GET, relative to the base URL (default `/api/jobs/:id`; e.g. the 202's links.progress). */
  path?: string;
  /** From one poll's start to the next's. */
  intervalMs: number;
  /** Epoch ms: a poll that finds the job unfinished after this is the last (pollJob gives null). */
  deadline?: number;
  /** Stops polling at once (pollJob gives null), a poll in flight included. */
  signal?: AbortSignal;
  /** Limit for each request (default: none). */
  requestTimeoutMs?: number;
  /** Every progress read, the finished one included. */
  onProgress?: (progress: JobProgress) => void;
  /** A failed poll: "retry" polls on, "stop" gives up (pollJob gives null). Without it, pollJob throws. */
  onFailure?: (failure: PollFailure) => "retry" | "stop";
}

type Poll = { progress: JobProgress } | { failure: PollFailure };

async function pollOnce(url: string, token: string, options: PollJobOptions): Promise<Poll> {
  const signals = [
    ...(options.signal ? [options.signal] : []),
    ...(options.requestTimeoutMs === undefined ? [] : [AbortSignal.timeout(options.requestTimeoutMs)]),
  ];
  let response: Response;
  let text: string;
  try {
    response = await fetch(url, {
      headers: { Authorization: `Bearer ${token}` },
      ...(signals.length > 0 ? { signal: AbortSignal.any(signals) } : {}),
    });
    text = await response.text();
  } catch (error) {
    return { failure: { error, message: errorMessage(error) } };
  }
  let body: unknown;
  try {
    body = JSON.parse(text) as unknown;
  } catch {
    body = text.slice(0, 300);
  }
  const counts =
    typeof body === "object" && body !== null ? (body as { counts?: unknown }).counts : undefined;
  if (response.ok && typeof counts === "object") return { progress: body as JobProgress };
  const status = response.status;
  return { failure: { status, body, message: `GET ${url} → ${status}: ${text.slice(0, 300)}` } };
}

/**
 * Polls the job's progress (`${url}/api/jobs/${jobId}`) every `intervalMs` until the job is finished; gives
 * its progress then, or null when the deadline passed, the signal fired or onFailure said "stop".
 */
export async function pollJob(
  url: string,
  token: string,
  jobId: string,
  options: PollJobOptions,
): Promise<JobProgress | null> {
  const progressUrl = options.path ? new URL(options.path, `${url}/`).toString() : `${url}/api/jobs/${jobId}`;
  const { signal, deadline } = options;
  for (;;) {
    if (signal?.aborted) return null;
    const pollStarted = Date.now();
    const poll = await pollOnce(progressUrl, token, options);
    if (signal?.aborted) return null;
    if ("progress" in poll) {
      options.onProgress?.(poll.progress);
      if (FINISHED.has(poll.progress.status)) return poll.progress;
    } else if (!options.onFailure) {
      throw poll.failure.error ?? new Error(poll.failure.message);
    } else if (options.onFailure(poll.failure) === "stop") {
      return null;
    }
    if (deadline !== undefined && Date.now() > deadline) return null;
    await sleep(Math.max(0, options.intervalMs - (Date.now() - pollStarted)), signal);
  }
}
