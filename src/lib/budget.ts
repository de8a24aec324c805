import { AppError } from "../errors";

/**
 * Counts one kind of operation against a per-invocation limit (subrequests, KV operations).
 * `take` throws a transient `budget_exhausted` error instead of letting the platform kill the invocation.
 */
export class Budget {
  readonly name: string;
  readonly limit: number;
  used = 0;

  constructor(name: string, limit: number) {
    this.name = name;
    this.limit = limit;
  }

  remaining(): number {
    return Math.max(0, this.limit - this.used);
  }

  take(count = 1): void {
    if (this.used + count > this.limit) {
      throw new AppError({
        code: "budget_exhausted",
        message: `${this.name} budget of ${this.limit} per invocation would be exceeded`,
        kind: "transient",
        httpStatus: 503,
        retryAfterSeconds: 0,
      });
    }
    this.used += count;
  }
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
