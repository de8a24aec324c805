import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach } from "vitest";
import { DRAIN_TIMEOUT_MS, drainQueues } from "./support/drain";
import { assertNoStrayCalls, guardedFetch } from "./support/upstream";

globalThis.fetch = guardedFetch as typeof fetch;
await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);

// Every test waits for what it sent through the real queues (so nothing it started fetches or writes
// after the next test's reset), then fails if anything tried to reach a host other than the stand-in.
afterEach(async () => {
  try {
    await drainQueues();
  } finally {
    assertNoStrayCalls();
  }
}, DRAIN_TIMEOUT_MS + 10_000);
