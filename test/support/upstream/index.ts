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

/** Every request to another host since the last check (`METHOD url`). */
const strayCalls: string[] = [];

/**
 * Replaces the global fetch: requests to the stand-in's hosts are answered in-process, anything else is
 * refused and recorded, and `assertNoStrayCalls` (after every test, from test/setup.ts) fails the test
 * that made it, whether or not an assertion depended on the refused call.
 */
export function guardedFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
  const request = new Request(input, init);
  const host = new URL(request.url).hostname;
  if (!STAND_IN_HOSTS.has(host)) {
    strayCalls.push(`${request.method} ${request.url}`);
    return Promise.reject(new Error(`unmocked network call in a test: ${request.method} ${request.url}`));
  }
  return upstream.fetch(request);
}

/** Returns the stray calls recorded so far and forgets them. */
export function takeStrayCalls(): string[] {
  return strayCalls.splice(0);
}

/** Throws when any request left for a host other than the stand-in's since the last check (and forgets them). */
export function assertNoStrayCalls(): void {
  const calls = takeStrayCalls();
  if (calls.length > 0) {
    throw new Error(
      `unmocked network call${calls.length > 1 ? "s" : ""} during this test: ${calls.join(", ")}`,
    );
  }
}
