import { DeferError } from "../errors";

function exhausted(name: string, limit: number): DeferError {
  return new DeferError({
    code: "budget_exhausted",
    message: `${name} budget of ${limit} per invocation would be exceeded`,
    retryAfterSeconds: 0,
  });
}

/** Something that operations are counted against; `take` throws `budget_exhausted` rather than overrun. */
export interface Allowance {
  take(count?: number): void;
}

/**
 * Counts one kind of operation against a per-invocation limit (subrequests, KV operations), so an
 * invocation stops itself instead of letting the platform kill it.
 *
 * Concurrent users reserve their worst case up front (`reserve`) and give back what they did not use:
 * the first author of a batch always gets enough to finish, and a batch can never livelock with every
 * author half-way through its pages when the budget runs out.
 */
export class Budget implements Allowance {
  readonly name: string;
  readonly limit: number;
  used = 0;
  private reserved = 0;
  private outstanding = 0;
  private waiters: (() => void)[] = [];

  constructor(name: string, limit: number) {
    this.name = name;
    this.limit = limit;
  }

  /** Units neither used nor reserved. */
  remaining(): number {
    return Math.max(0, this.limit - this.used - this.reserved);
  }

  take(count = 1): void {
    if (count > this.remaining()) throw exhausted(this.name, this.limit);
    this.used += count;
  }

  /**
   * Reserves `units` (capped at the whole budget), waiting while other reservations may still give units
   * back. Resolves to null when the budget can never cover it: the caller should defer its work.
   */
  async reserve(units: number): Promise<Reservation | null> {
    const wanted = Math.min(units, this.limit);
    for (;;) {
      if (this.remaining() >= wanted) {
        this.reserved += wanted;
        this.outstanding++;
        return new Reservation(this, wanted);
      }
      if (this.outstanding === 0) return null;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Called by a reservation: `used` of its units were spent, the rest go back to the pool. */
  settle(reservedUnits: number, usedUnits: number, closing: boolean): void {
    this.reserved -= reservedUnits;
    this.used += usedUnits;
    if (closing) this.outstanding--;
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}

/** A slice of a budget held by one user; overspending draws from the pool's free units, if any. */
export class Reservation implements Allowance {
  private readonly budget: Budget;
  private left: number;
  private closed = false;

  constructor(budget: Budget, units: number) {
    this.budget = budget;
    this.left = units;
  }

  take(count = 1): void {
    if (this.closed) throw exhausted(this.budget.name, this.budget.limit);
    if (count <= this.left) {
      this.left -= count;
      this.budget.settle(count, count, false);
      return;
    }
    this.budget.take(count);
  }

  /** Gives the unused part back. */
  release(): void {
    if (this.closed) return;
    this.closed = true;
    this.budget.settle(this.left, 0, true);
    this.left = 0;
  }
}

/** A gate for at most `limit` calls in flight, shared by callers that start at different times. */
export function createLimiter(limit: number): <R>(fn: () => Promise<R>) => Promise<R> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async (fn) => {
    while (active >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
    active++;
    try {
      return await fn();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

/** Runs `fn` over `items` with at most `limit` in flight, keeping result order. */
export async function mapWithConcurrency<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}
