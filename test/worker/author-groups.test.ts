import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { cacheKeys } from "../../src/cache/keys";
import { loadConfig } from "../../src/config";
import { createProviderBreakers } from "../../src/sources";
import { fetchAuthorsGrouped } from "../../src/sources/author-groups";
import { authorGroupQuery } from "../../src/sources/openlibrary-authors";
import type { Work } from "../../src/sources/types";
import { handleWarmBatch } from "../../src/warm/consumer";
import { resetAll } from "../support/db";
import { trackingEnv } from "../support/drain";
import { queueMessage, seedJob, warmDeps } from "../support/jobs";
import { upstream } from "../support/upstream";
import { worksForAuthor } from "../support/upstream/catalogue.ts";
import { authorOrTerms } from "../support/upstream/handler.ts";

function authorsWhere(predicate: (works: number) => boolean, prefix: string, n: number): string[] {
  const found: string[] = [];
  for (let i = 0; found.length < n && i < 10_000; i++) {
    const name = `${prefix} ${i}`;
    if (predicate(worksForAuthor(name).length)) found.push(name);
  }
  return found;
}

const ordinary = authorsWhere((w) => w > 0 && w < 30, "Grouped Writer", 7);
const prolific = authorsWhere((w) => w >= 120, "Prolific Writer", 9);
/** Spelled as uploads spell them; the stand-in (like Open Library) answers "A. A. Milne". */
const initials = ["A.A. Milne", "J.R.R. Tolkien"];
const unknown = "zz-unknown author";

async function cachedWorkIds(names: readonly string[]): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const name of names) {
    const list = await env.CACHE.get<{ works: Work[] }>(cacheKeys.authorWorks(name), "json");
    out[name] = (list?.works ?? []).map((w) => w.id).sort();
  }
  return out;
}

async function warmAll(names: string[], perRequest: number) {
  const config = loadConfig({ ...env, OPENLIBRARY_AUTHORS_PER_REQUEST: String(perRequest) });
  const { messages } = await seedJob(names, 0);
  const batch = createMessageBatch(
    "author-warming-queue",
    messages.map((m) => queueMessage(m)),
  );
  await handleWarmBatch(batch, trackingEnv(), warmDeps({ config, breakers: createProviderBreakers() }));
  const result = await getQueueResult(batch, createExecutionContext());
  expect(result.explicitAcks).toHaveLength(names.length);
  return { works: await cachedWorkIds(names), stats: upstream.stats() };
}

describe("batched author queries", () => {
  beforeEach(resetAll);

  it("caches the same works per author grouped as one author per request, with far fewer requests", async () => {
    const names = [...ordinary.slice(0, 6), ...initials, unknown];
    const grouped = await warmAll(names, 10);
    await resetAll();
    const single = await warmAll(names, 1);
    expect(grouped.works).toEqual(single.works);
    for (const name of initials) expect(grouped.works[name]?.length).toBeGreaterThan(0);
    // Nine authors in one Open Library request; one at a time it takes nine.
    expect(grouped.stats.byPath["/search.json"]).toBe(1);
    expect(single.stats.byPath["/search.json"]).toBe(9);
    // Google only for the author Open Library has nothing for (complement), in both modes.
    expect(grouped.stats.byPath["/books/v1/volumes"]).toBe(1);
    expect(single.stats.byPath["/books/v1/volumes"]).toBe(1);
  });

  it("splits a group whose works do not fit one query, and still caps each author at MAX_WORKS_PER_AUTHOR", async () => {
    const names = [...prolific, ...ordinary.slice(0, 4)];
    const config = loadConfig({ ...env, MAX_WORKS_PER_AUTHOR: "60" });
    const ctx = { config, fetch: upstream.fetch, breakers: createProviderBreakers() };
    const grouped = await fetchAuthorsGrouped(names, ctx);
    const groupedRequests = upstream.stats().byPath["/search.json"] ?? 0;
    upstream.reset();
    for (const name of names) {
      const [alone] = (await fetchAuthorsGrouped([name], ctx)).values();
      const together = grouped.get(name);
      if (!alone?.ok || !together?.ok) throw new Error(`${name} was not fetched`);
      expect(together.result.works.map((w) => w.id).sort()).toEqual(
        alone.result.works.map((w) => w.id).sort(),
      );
      expect(together.result.works.length).toBeLessThanOrEqual(60);
    }
    // 9 prolific authors (≥ 120 works each) do not fit one page of 1,000: the group was split, yet asked less often.
    expect(groupedRequests).toBeGreaterThan(1);
    expect(groupedRequests).toBeLessThan(upstream.stats().byPath["/search.json"] ?? 0);
  });

  it("writes OR-combined author terms the stand-in (and Open Library) parse back", () => {
    const names = ["A.A. Milne", 'Dwayne "The Rock" Johnson', "Ursula K. Le Guin"];
    const q = authorGroupQuery(names);
    expect(q).toBe('author:"A.A. Milne" OR author:"Dwayne  The Rock  Johnson" OR author:"Ursula K. Le Guin"');
    expect(authorOrTerms(q)).toEqual(["A.A. Milne", "Dwayne  The Rock  Johnson", "Ursula K. Le Guin"]);
    expect(authorOrTerms("author:Solo")).toEqual(["Solo"]);
    expect(authorOrTerms('author:"A" OR title:"B"')).toBeNull();
  });
});
