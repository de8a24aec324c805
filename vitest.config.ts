import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

/**
 * Two projects on the same bindings: `worker` runs the production entry (src/index.ts) exactly as
 * deployed; `instrumented` runs the test entry that wraps it from outside (counters, naive modes, crash and
 * duplicate injection, /__test routes), for the chaos soak and the hooks bench and chaos rely on.
 */
export default defineConfig(async () => {
  const migrations = await readD1Migrations(path.join(import.meta.dirname, "migrations"));
  const workers = (main: string | undefined) =>
    cloudflareTest({
      ...(main ? { main } : {}),
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        bindings: {
          TEST_MIGRATIONS: migrations,
          ENVIRONMENT: "test",
          API_TOKEN: "test-token",
          READ_TOKEN: "test-read-token",
          // The public read allowance is pinned by its own tests (createApp with a small allowance).
          PUBLIC_READ_MISSES_PER_MINUTE: "0",
          PUBLIC_READ_MISSES_GLOBAL_PER_MINUTE: "0",
          // Retries come back at once in tests; production backs off from 5 s.
          RETRY_BASE_SECONDS: "0",
          RETRY_MAX_SECONDS: "0",
          OPENLIBRARY_BASE_URL: "http://openlibrary.test",
          GOOGLE_BOOKS_BASE_URL: "http://googlebooks.test",
          OPENLIBRARY_RATE_PER_SECOND: "0",
          GOOGLE_BOOKS_RATE_PER_SECOND: "0",
          BREAKER_COOLDOWN_SECONDS: "1",
          UPSTREAM_TIMEOUT_MS: "1500",
          // The job Workflow's warm stage looks at D1 often in tests (production: every second).
          WARM_POLL_MS: "50",
        },
        queueConsumers: {
          "author-warming-queue": {
            maxBatchTimeout: 0.05,
            maxBatchSize: 10,
            maxRetries: 3,
            deadLetterQueue: "author-warming-dlq",
          },
          "isbn-warming-queue": {
            maxBatchTimeout: 0.05,
            maxBatchSize: 25,
            maxRetries: 3,
            deadLetterQueue: "author-warming-dlq",
          },
          "priority-warming-queue": {
            maxBatchTimeout: 0.05,
            maxBatchSize: 10,
            maxRetries: 3,
            deadLetterQueue: "author-warming-dlq",
          },
          "author-warming-dlq": { maxBatchTimeout: 0.05, maxBatchSize: 10, maxRetries: 3 },
        },
      },
    });
  const shared = {
    setupFiles: ["./test/setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  };
  return {
    test: {
      // Test files share the in-process book-API stand-in and each resets all storage: one at a time.
      fileParallelism: false,
      maxWorkers: 1,
      // Each request and consumer logs a JSON line; show them only for tests that fail.
      silent: "passed-only",
      // The chaos soak makes the consumer throw on purpose (as a crash would): those, and only those,
      // are expected. Any other unhandled error still fails the run.
      onUnhandledError: (error) => !String(error?.message ?? "").startsWith("chaos: consumer crashed"),
      projects: [
        {
          plugins: [workers(undefined)],
          test: {
            ...shared,
            name: "worker",
            include: ["test/unit/**/*.test.ts", "test/worker/**/*.test.ts"],
          },
        },
        {
          plugins: [workers("./test/support/instrumented/entry.ts")],
          test: { ...shared, name: "instrumented", include: ["test/instrumented/**/*.test.ts"] },
        },
        {
          // Plain Node: the OpenAPI document checked with a validator (ajv compiles code, which workerd
          // forbids) and the dashboard driven in headless Chromium against a running local stack.
          test: {
            name: "node",
            environment: "node",
            include: ["test/node/**/*.test.ts", "test/browser/**/*.test.ts"],
            testTimeout: 30_000,
            hookTimeout: 180_000,
          },
        },
      ],
    },
  };
});
