export type BreakerState = "closed" | "open" | "half-open";

export interface BreakerSnapshot {
  name: string;
  state: BreakerState;
  consecutiveFailures: number;
  lastChangeAt: number | null;
  openUntil: number | null;
}

/**
 * A circuit breaker: opens after `failureThreshold` consecutive failures, stays open for `coolDownMs`,
 * then lets exactly one probe through (half-open). The probe's success closes it, a failure re-opens it.
 * State lives in the isolate: each isolate protects itself, which is what a breaker is for.
 */
export class CircuitBreaker {
  readonly name: string;
  private readonly failureThreshold: number;
  private readonly coolDownMs: number;
  private readonly now: () => number;
  private state: BreakerState = "closed";
  private failures = 0;
  private openedAt = 0;
  private probeInFlight = false;
  private lastChangeAt: number | null = null;

  constructor(
    name: string,
    opts: { failureThreshold?: number; coolDownMs?: number; now?: () => number } = {},
  ) {
    this.name = name;
    this.failureThreshold = opts.failureThreshold ?? 5;
    this.coolDownMs = opts.coolDownMs ?? 15_000;
    this.now = opts.now ?? Date.now;
  }

  /** Whether a call may go ahead now. In half-open state only one caller gets `true` until it reports. */
  tryAcquire(): boolean {
    if (this.state === "closed") return true;
    if (this.state === "open") {
      if (this.now() - this.openedAt < this.coolDownMs) return false;
      this.transition("half-open");
    }
    if (this.probeInFlight) return false;
    this.probeInFlight = true;
    return true;
  }

  /** Milliseconds until a probe would be allowed (0 when calls may go ahead). */
  retryInMs(): number {
    if (this.state !== "open") return 0;
    return Math.max(0, this.openedAt + this.coolDownMs - this.now());
  }

  recordSuccess(): void {
    this.failures = 0;
    this.probeInFlight = false;
    if (this.state !== "closed") this.transition("closed");
  }

  /** The call ended without saying anything about the dependency's health (e.g. the caller's own bad input). */
  recordNeutral(): void {
    this.probeInFlight = false;
  }

  recordFailure(): void {
    this.failures++;
    this.probeInFlight = false;
    if (this.state === "half-open" || (this.state === "closed" && this.failures >= this.failureThreshold)) {
      this.openedAt = this.now();
      this.transition("open");
    }
  }

  /** Back to closed with no failures counted, as a fresh breaker (tests reset the isolate's breakers). */
  reset(): void {
    this.state = "closed";
    this.failures = 0;
    this.openedAt = 0;
    this.probeInFlight = false;
    this.lastChangeAt = null;
  }

  snapshot(): BreakerSnapshot {
    return {
      name: this.name,
      state: this.state === "open" && this.retryInMs() === 0 ? "half-open" : this.state,
      consecutiveFailures: this.failures,
      lastChangeAt: this.lastChangeAt,
      openUntil: this.state === "open" ? this.openedAt + this.coolDownMs : null,
    };
  }

  private transition(to: BreakerState): void {
    this.state = to;
    this.lastChangeAt = this.now();
    console.log(
      JSON.stringify({ msg: "breaker state change", breaker: this.name, state: to, failures: this.failures }),
    );
  }
}
