import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { guardedFetch } from "./support/upstream";

globalThis.fetch = guardedFetch as typeof fetch;
await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
