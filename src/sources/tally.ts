import type { SourceName } from "./types";

/** One provider's tries in one invocation. */
export interface ProviderTally {
  requests: number;
  /** Tries that did not answer 2xx (timeouts and network errors included). */
  errors: number;
  /** Tries answered 429 (or a daily-quota refusal). */
  throttled: number;
}

export const PROVIDERS: readonly SourceName[] = ["openlibrary", "googlebooks"];

const empty = (): ProviderTally => ({ requests: 0, errors: 0, throttled: 0 });

/**
 * Counts upstream tries per provider in memory (a few integer increments per request); the consumer writes
 * the sums once per invocation, in the D1 batch it already makes and in its Analytics Engine point.
 */
export class UpstreamTally {
  readonly byProvider: Record<SourceName, ProviderTally> = { openlibrary: empty(), googlebooks: empty() };

  record(source: SourceName, status: number | null): void {
    const t = this.byProvider[source];
    t.requests++;
    if (status === null || status < 200 || status >= 300) t.errors++;
    if (status === 429) t.throttled++;
  }

  add(other: UpstreamTally): void {
    for (const p of PROVIDERS) {
      const t = this.byProvider[p];
      const o = other.byProvider[p];
      t.requests += o.requests;
      t.errors += o.errors;
      t.throttled += o.throttled;
    }
  }

  get requests(): number {
    return PROVIDERS.reduce((n, p) => n + this.byProvider[p].requests, 0);
  }
}
