/**
 * Follows a job: polls GET /api/jobs/:id (with the API token, which job reads need) until the job is
 * finished, the deadline passes or the signal fires. The one poll loop of the warm CLI (and so the demo),
 * the bench and the chaos soak; each keeps its own log lines in onProgress and onFailure.
 */
import type { JobProgress } from "../../src/api/job-responses.ts";
import { type KindlingClient, kindlingClient } from "./api-client.ts";
import { errorMessage } from "./processes.ts";
import { sleep } from "./sleep.ts";

/** Job statuses after which nothing more happens to the job (until a redrive). */
export const FINISHED: ReadonlySet<JobProgress["status"]> = new Set([
  "completed",
  "completed_with_errors",
  "cancelled",
  "failed",
]);

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
  /** The job's read link (the 202's links.progress, `/api/jobs/:id?key=…`): its key is sent along. */
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

async function pollOnce(
  client: KindlingClient,
  jobId: string,
  key: string | undefined,
  options: PollJobOptions,
): Promise<Poll> {
  const signals = [
    ...(options.signal ? [options.signal] : []),
    ...(options.requestTimeoutMs === undefined ? [] : [AbortSignal.timeout(options.requestTimeoutMs)]),
  ];
  const url = `GET /api/jobs/${jobId}`;
  let answer: Awaited<ReturnType<typeof getProgress>>;
  try {
    answer = await getProgress(client, jobId, key, signals.length > 0 ? AbortSignal.any(signals) : undefined);
  } catch (error) {
    return { failure: { error, message: errorMessage(error) } };
  }
  const { data, error, response } = answer;
  // A 200 whose body is not a progress report (a proxy's page, say) is a failure like any other.
  if (data && typeof data.counts === "object") return { progress: data };
  const status = response.status;
  // openapi-fetch keeps a refusal's body as JSON, or as text when it is not JSON (a proxy's page).
  const refusal: unknown = error;
  const body: unknown = typeof refusal === "string" ? refusal.slice(0, 300) : (refusal ?? data);
  return {
    failure: { status, body, message: `${url} → ${status}: ${(JSON.stringify(body) ?? "").slice(0, 300)}` },
  };
}

function getProgress(
  client: KindlingClient,
  id: string,
  key: string | undefined,
  signal: AbortSignal | undefined,
) {
  return client.GET("/api/jobs/{id}", {
    params: { path: { id }, query: key === undefined ? {} : { key } },
    ...(signal ? { signal } : {}),
  });
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
  const client = kindlingClient(url, token);
  // A read link (`/api/jobs/:id?key=…`) is followed with its key; the admin token is sent as well.
  const key = options.path
    ? (new URL(options.path, `${url}/`).searchParams.get("key") ?? undefined)
    : undefined;
  const { signal, deadline } = options;
  for (;;) {
    if (signal?.aborted) return null;
    const pollStarted = Date.now();
    const poll = await pollOnce(client, jobId, key, options);
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
