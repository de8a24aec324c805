import { TTL_SECONDS } from "../../cache/keys";
import type { Cache } from "../../cache/kv";
import type { Config } from "../../config";
import { runSteps } from "../../db/step";
import { markPending } from "../../db/tasks";
import { isbnOfItemKey } from "../../ingest/isbn";
import { admitQuietly } from "../admission";
import { markerFor, markerKey } from "../marker";
import { sendWarmMessages, taskId, type WarmMessage, warmQueues } from "../messages";
import type { Claims } from "./claim";
import type { Recorded } from "./record";
import type { Done, Outcome } from "./types";

/**
 * As this batch's tasks finish, the next are admitted (their co-authors among them, written `pending` by the
 * record batch): across the running jobs by priority-weighted round robin, each within its window, from
 * the windows the record batch read. A failure is logged: the warm stage's next poll admits them.
 */
export async function admitAfterBatch(
  env: Env,
  config: Config,
  recorded: Recorded,
  now: () => number,
): Promise<void> {
  await admitQuietly(env, config, now(), recorded.admission);
}

/** Markers last: an author counts as warmed only once its works and its task are recorded. */
export async function writeMarkers(
  cache: Cache,
  outcomes: readonly Outcome[],
  recorded: Recorded,
  now: number,
) {
  // An ISBN no source knew gets no marker: the next upload asks again.
  const done = outcomes.filter(
    (o): o is Done =>
      o.kind === "done" &&
      recorded.closed.has(taskId(o.body)) &&
      (o.works.length > 0 || isbnOfItemKey(o.body.authorKey) === null),
  );
  await Promise.all(
    done.map((o) =>
      cache.set(markerKey(o.body), markerFor(o.body, o.works.length, now), TTL_SECONDS.processedMarker),
    ),
  );
}

/**
 * Deferred authors get a fresh copy (keeping their retry allowance: a spent budget or an open breaker is
 * not the author's fault), one generation on, so any stray copy of the old message is dropped.
 */
export async function resendDeferred(
  env: Env,
  outcomes: readonly Outcome[],
  claims: Claims,
  now: () => number,
): Promise<void> {
  const byDelay = new Map<number, WarmMessage[]>();
  for (const o of outcomes) {
    if (o.kind !== "defer") continue;
    const gen = claims.generations.get(taskId(o.body));
    // A deferred task whose requeue changed nothing (closed meanwhile) needs no fresh copy.
    if (gen === undefined || gen === o.body.gen) continue;
    byDelay.set(o.delaySeconds, [...(byDelay.get(o.delaySeconds) ?? []), { ...o.body, gen }]);
  }
  const unsent: WarmMessage[] = [];
  for (const [delaySeconds, messages] of byDelay) {
    const result = await sendWarmMessages(warmQueues(env), messages, { delaySeconds });
    unsent.push(...result.unsent);
  }
  if (unsent.length === 0) return;
  // The sweeper re-sends pending tasks with their current generation.
  await runSteps(env.DB, [markPending(env.DB, unsent, now())]).catch((error: unknown) =>
    console.error(
      JSON.stringify({ msg: "deferred tasks left queued without a message", error: String(error) }),
    ),
  );
}
