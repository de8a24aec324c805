/**
 * The chaos soak's fault profile for the stand-in, shared by `npm run chaos` and its short variant in
 * `npm test`. Web-standard only (imported inside workerd by the test).
 */
import { authorKey, hashFraction } from "./catalogue.ts";

export const FAILING_FRACTION = 0.01;

export const CHAOS_FAULTS = {
  statusRates: { "500": 0.2 },
  rate429: 0.05,
  retryAfterSeconds: 1,
  hangRate: 0.02,
  malformedRate: 0.01,
  failingAuthorFraction: FAILING_FRACTION,
};

export const NO_FAULTS = {
  statusRates: {},
  rate429: 0,
  hangRate: 0,
  malformedRate: 0,
  failingAuthorFraction: 0,
};

/** The stand-in decides "always failing" by a hash of the author key: the expected dead/failed set. */
export const alwaysFails = (name: string): boolean =>
  hashFraction(authorKey(name), "failing") < FAILING_FRACTION;
