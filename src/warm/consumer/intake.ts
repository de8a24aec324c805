import type { Config } from "../../config";
import { taskId, type WarmMessage, warmMessageSchema } from "../messages";
import type { InvocationMetrics } from "../metrics";
import { backoff } from "./types";

export interface Delivery {
  message: Message<unknown>;
  body: WarmMessage;
  /** The author's own failures so far, where the claim read them (a redelivery or a re-sent message). */
  failures?: number;
}

/**
 * The batch's messages, one per task: a duplicate in the same batch rides on its twin and is acked with it,
 * and only the newest generation speaks for a task. Invalid messages are acked and counted as failed.
 */
export class Intake {
  readonly primaries = new Map<string, Delivery>();
  private readonly riders = new Map<string, Message<unknown>[]>();

  constructor(batch: MessageBatch<unknown>, metrics: InvocationMetrics) {
    for (const message of batch.messages) {
      const parsed = warmMessageSchema.safeParse(message.body);
      if (!parsed.success) {
        console.error(
          JSON.stringify({
            msg: "invalid warm message dropped",
            id: message.id,
            issues: parsed.error.issues,
          }),
        );
        metrics.failed++;
        message.ack();
        continue;
      }
      this.add(message, parsed.data);
    }
  }

  private add(message: Message<unknown>, body: WarmMessage): void {
    const id = taskId(body);
    const current = this.primaries.get(id);
    if (!current) this.primaries.set(id, { message, body });
    else if (body.gen > current.body.gen) {
      // Only the newest generation can claim the task: an older copy must not speak for it.
      this.ride(id, current.message);
      this.primaries.set(id, { message, body });
    } else this.ride(id, message);
  }

  private ride(id: string, message: Message<unknown>): void {
    this.riders.set(id, [...(this.riders.get(id) ?? []), message]);
  }

  get deliveries(): Delivery[] {
    return [...this.primaries.values()];
  }

  /** Settles a task's message with `action`; the riders are acked. */
  settle(id: string, action: (m: Message<unknown>) => void): void {
    const primary = this.primaries.get(id);
    if (primary) action(primary.message);
    for (const rider of this.riders.get(id) ?? []) rider.ack();
  }

  /** Acks a task's messages unworked and forgets it (its task is closed or has moved on). */
  drop(id: string): void {
    this.settle(id, (m) => m.ack());
    this.primaries.delete(id);
  }

  /** Nothing could be recorded: every message goes round again with backoff. */
  retryAll(config: Config, random: () => number, reason: string, metrics: InvocationMetrics): void {
    for (const [id, { message }] of this.primaries) {
      const delaySeconds = backoff(config, message.attempts, undefined, random);
      console.error(JSON.stringify({ msg: "batch retried", reason, id: message.id, delaySeconds }));
      this.settle(id, (m) => m.retry({ delaySeconds }));
      metrics.retried++;
    }
  }
}
