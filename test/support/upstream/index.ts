/**
 * The book-API stand-in (Open Library and Google Books), owned by the tests. This folder holds it:
 * handler.ts (the web-standard fetch handler, fault injection), catalogue.ts and recorded.ts (its data),
 * chaos-profile.ts (the chaos soak's faults), server.ts (the Node http server behind `npm run upstream` and
 * the offline stack of scripts/dev-offline.ts) and gen-recorded.ts (regenerates recorded.ts). This file
 * is the in-process instance vitest uses.
 */
import { createFakeUpstream, type FakeUpstream } from "./handler.ts";

/** The book-API stand-in every test talks to, in-process. Tests reconfigure and reset it. */
export const upstream: FakeUpstream = createFakeUpstream();

const STAND_IN_HOSTS = new Set(["openlibrary.test", "googlebooks.test"]);

/**
 * Replaces the global fetch: requests to the stand-in's hosts are answered in-process, anything else
 * fails the test, so no test ever reaches the network by accident.
 */
export function guardedFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
  const request = new Request(input, init);
  const host = new URL(request.url).hostname;
  if (!STAND_IN_HOSTS.has(host)) {
    return Promise.reject(new Error(`unmocked network call in a test: ${request.method} ${request.url}`));
  }
  return upstream.fetch(request);
}
