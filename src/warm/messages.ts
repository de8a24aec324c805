import { z } from "zod";
import type { StaleTask } from "../db/tasks";
import { isbnOfItemKey } from "../ingest/isbn";
import { MAX_AUTHOR_KEY_CHARS, MAX_AUTHOR_NAME_CHARS } from "../ingest/limits";

/** The warm queue's message: validated when sent and again when received. */
export const warmMessageSchema = z.object({
  v: z.literal(1),
  jobId: z.string().min(1).max(64),
  authorKey: z.string().min(1).max(MAX_AUTHOR_KEY_CHARS),
  authorName: z.string().min(1).max(MAX_AUTHOR_NAME_CHARS),
  depth: z.number().int().min(0).max(3),
  maxDepth: z.number().int().min(0).max(3),
  /** The task's generation when this message was sent; a copy from an older generation is obsolete. */
  gen: z.number().int().min(0).default(0),
  /** Set when the job was `high` as the message was sent: it rides the priority lane (`queueOf`). */
  lane: z.literal("priority").optional(),
});

export type WarmMessage = z.infer<typeof warmMessageSchema>;

/** A task as D1 returns it, with what its message needs. */
export type TaskMessageRow = StaleTask;

/** The one place a task row becomes a warm message (unvalidated: `sendWarmMessages` checks it). */
export function warmMessageFor(row: TaskMessageRow): WarmMessage {
  return {
    v: 1,
    jobId: row.job_id,
    authorKey: row.author_key,
    authorName: row.author_name,
    depth: Number(row.depth),
    maxDepth: Number(row.max_depth),
    gen: Number(row.generation),
    ...(row.priority === "high" ? { lane: "priority" as const } : {}),
  };
}

/**
 * The warm queues: one per kind of item, authors (a consumer batch of 10 is one OR-combined Open Library
 * query, and up to ~1,000 KV writes) and ISBN items (a batch of 25 is one lookup and a few writes each), and
 * the priority lane for `high` jobs' items of either kind. A queue delivers in order, so a `high` job's first
 * items would otherwise wait behind every batch already admitted for other jobs; in their own lane they are
 * consumed beside those, and the provider's scheduler gives them its slots first (4 : 2). All are consumed
 * by the same handler; a message always goes to the queue `queueOf` names.
 */
export interface WarmQueues {
  authors: Queue<WarmMessage>;
  isbns: Queue<WarmMessage>;
  priority: Queue<WarmMessage>;
}

export function warmQueues(env: Env): WarmQueues {
  return {
    authors: env.WARM_QUEUE as Queue<WarmMessage>,
    isbns: env.ISBN_QUEUE as Queue<WarmMessage>,
    priority: env.PRIORITY_QUEUE as Queue<WarmMessage>,
  };
}

/** Which warm queue a message belongs on: the priority lane if it rides it, else its kind's queue. */
export function queueOf(message: Pick<WarmMessage, "authorKey" | "lane">): keyof WarmQueues {
  if (message.lane === "priority") return "priority";
  return isbnOfItemKey(message.authorKey) === null ? "authors" : "isbns";
}

/** The identity of a task (and of its messages) within a batch. */
export function taskId(m: { jobId: string; authorKey: string }): string {
  return `${m.jobId}\u0000${m.authorKey}`;
}

/** Platform limits for one `sendBatch` call. */
export const SEND_BATCH_MAX_MESSAGES = 100;
export const SEND_BATCH_MAX_BYTES = 256 * 1024;
/** Per-message overhead the platform counts on top of the body; kept generous. */
const MESSAGE_OVERHEAD_BYTES = 100;

/** Splits messages into sendBatch-sized groups: ≤ 100 messages and ≤ 256 KB each. */
export function planSendBatches(messages: readonly WarmMessage[]): WarmMessage[][] {
  const batches: WarmMessage[][] = [];
  let current: WarmMessage[] = [];
  let bytes = 0;
  const encoder = new TextEncoder();
  for (const message of messages) {
    const size = encoder.encode(JSON.stringify(message)).byteLength + MESSAGE_OVERHEAD_BYTES;
    if (
      current.length > 0 &&
      (current.length >= SEND_BATCH_MAX_MESSAGES || bytes + size > SEND_BATCH_MAX_BYTES)
    ) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(message);
    bytes += size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

export interface SendResult {
  sent: WarmMessage[];
  unsent: WarmMessage[];
  /** Messages that break the schema: never sent; the caller fails their tasks (poison, not a crash). */
  invalid: { message: WarmMessage; reason: string }[];
  calls: number;
}

/** Splits messages into those the schema accepts and those it refuses, with a short reason each. */
export function partitionValid(messages: readonly WarmMessage[]): {
  valid: WarmMessage[];
  invalid: SendResult["invalid"];
} {
  const valid: WarmMessage[] = [];
  const invalid: SendResult["invalid"] = [];
  for (const message of messages) {
    const parsed = warmMessageSchema.safeParse(message);
    if (parsed.success) valid.push(parsed.data);
    else {
      const issue = parsed.error.issues[0];
      invalid.push({ message, reason: `invalid_task: ${issue?.path.join(".")} ${issue?.message}` });
    }
  }
  return { valid, invalid };
}

/**
 * Sends messages in platform-sized batches, a few calls in flight at once. A failed call does not stop
 * the others: its messages are reported unsent so the caller leaves their tasks pending for the sweeper.
 */
export async function sendWarmMessages(
  queues: WarmQueues,
  messages: readonly WarmMessage[],
  options: { concurrency?: number; delaySeconds?: number } = {},
): Promise<SendResult> {
  const { valid, invalid } = partitionValid(messages);
  if (invalid.length > 0)
    console.error(JSON.stringify({ msg: "invalid warm messages not sent", count: invalid.length }));
  return { ...(await sendChecked(queues, valid, options)), invalid };
}

/** Sends messages already checked by `partitionValid`, each to its queue (`queueOf`), in platform-sized batches. */
async function sendChecked(
  queues: WarmQueues,
  messages: readonly WarmMessage[],
  options: { concurrency?: number; delaySeconds?: number } = {},
): Promise<SendResult> {
  const byQueue: Record<keyof WarmQueues, WarmMessage[]> = { authors: [], isbns: [], priority: [] };
  for (const message of messages) byQueue[queueOf(message)].push(message);
  const batches = (Object.keys(byQueue) as (keyof WarmQueues)[]).flatMap((kind) =>
    planSendBatches(byQueue[kind]).map((batch) => ({ queue: queues[kind], batch })),
  );
  const sent: WarmMessage[] = [];
  const unsent: WarmMessage[] = [];
  let next = 0;
  const worker = async () => {
    while (next < batches.length) {
      const { queue, batch } = batches[next++] as (typeof batches)[number];
      try {
        await queue.sendBatch(
          batch.map((body) => ({ body, contentType: "json" as const })),
          options.delaySeconds ? { delaySeconds: options.delaySeconds } : undefined,
        );
        sent.push(...batch);
      } catch (error) {
        console.error(
          JSON.stringify({ msg: "sendBatch failed", messages: batch.length, error: String(error) }),
        );
        unsent.push(...batch);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency ?? 6, batches.length) }, worker));
  return { sent, unsent, invalid: [], calls: batches.length };
}
