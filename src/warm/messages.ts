import { z } from "zod";

/** The warm queue's message: validated when sent and again when received. */
export const warmMessageSchema = z.object({
  v: z.literal(1),
  jobId: z.string().min(1).max(64),
  authorKey: z.string().min(1).max(1024),
  authorName: z.string().min(1).max(1024),
  depth: z.number().int().min(0).max(3),
  maxDepth: z.number().int().min(0).max(3),
  /** The task's generation when this message was sent; a copy from an older generation is obsolete. */
  gen: z.number().int().min(0).default(0),
});

export type WarmMessage = z.infer<typeof warmMessageSchema>;

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
  calls: number;
}

/**
 * Sends messages in platform-sized batches, a few calls in flight at once. A failed call does not stop
 * the others: its messages are reported unsent so the caller leaves their tasks pending for the sweeper.
 */
export async function sendWarmMessages(
  queue: Queue<WarmMessage>,
  messages: readonly WarmMessage[],
  options: { concurrency?: number; delaySeconds?: number } = {},
): Promise<SendResult> {
  const batches = planSendBatches(messages.map((m) => warmMessageSchema.parse(m)));
  const sent: WarmMessage[] = [];
  const unsent: WarmMessage[] = [];
  let next = 0;
  const worker = async () => {
    while (next < batches.length) {
      const batch = batches[next++] as WarmMessage[];
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
  return { sent, unsent, calls: batches.length };
}
