import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import type { JobCreated, JobProgress } from "../../src/api/job-responses";
import { cacheKeys } from "../../src/cache/keys";
import { parseLibraryExport } from "../../src/ingest/csv";
import { authorKey } from "../../src/ingest/normalize";
import type { Work } from "../../src/sources/types";
import { handleWarmBatch } from "../../src/warm/consumer";
import { groupDeliveries } from "../../src/warm/consumer/group";
import goodreads2025 from "../fixtures/goodreads-2025.csv?raw";
import { resetAll, taskCounts } from "../support/db";
import { trackingEnv } from "../support/drain";
import { uploadCsv, waitForJob } from "../support/http";
import { type QueueMessageInput, queueMessage, seedJob, warmDeps } from "../support/jobs";
import { upstream } from "../support/upstream";
import { EXPORT_BOOKS } from "../support/upstream/export-books.ts";
import { openLibraryKnowsIsbn } from "../support/upstream/export-catalogue.ts";

const QUEUE = "author-warming-queue";

async function runBatch(messages: QueueMessageInput[]) {
  const batch = createMessageBatch(QUEUE, messages);
  const ctx = createExecutionContext();
  await handleWarmBatch(batch, trackingEnv(), warmDeps());
  return getQueueResult(batch, ctx);
}

/** Export books Open Library's stand-in knows (or not), to steer which source answers. */
const known = EXPORT_BOOKS.filter(([isbn]) => openLibraryKnowsIsbn(isbn));
const unknownToOpenLibrary = EXPORT_BOOKS.filter(([isbn]) => !openLibraryKnowsIsbn(isbn));

describe("ISBN work items in the consumer", () => {
  beforeEach(resetAll);

  it("looks a batch of ISBNs up with one Open Library request and caches each edition by its ISBN", async () => {
    const books = [...known.slice(0, 8), ...unknownToOpenLibrary.slice(0, 2)];
    const { jobId, messages } = await seedJob(
      [],
      0,
      books.map(([isbn]) => isbn),
    );
    const result = await runBatch(messages.map((m) => queueMessage(m)));
    expect(result.explicitAcks).toHaveLength(10);
    const stats = upstream.stats();
    // One grouped Open Library query for ten ISBNs; Google only for the two Open Library does not know.
    expect(stats.byPath["/search.json"]).toBe(1);
    expect(stats.byPath["/books/v1/volumes"]).toBe(2);
    for (const [isbn, title, authors] of books) {
      const work = await env.CACHE.get<Work>(cacheKeys.bookByIsbn(isbn), "json");
      expect(work?.isbn13).toBe(isbn);
      expect(work?.title).toBe(title);
      // Open Library spells initials spaced ("M. L. Wang" for the export's "M.L. Wang"): one author key.
      expect(work?.authors.map(authorKey)).toEqual(authors.map(authorKey));
      expect(await env.CACHE.get(cacheKeys.bookByTitle(title, authors[0] as string))).not.toBeNull();
    }
    // An ISBN item has no author list of its own.
    expect(await env.CACHE.get(cacheKeys.authorWorks(books[0]?.[0] as string))).toBeNull();
    expect(await taskCounts(jobId)).toEqual({ done: 10 });
  });

  it("looks a full ISBN-queue batch of 25 up with one Open Library request", async () => {
    const books = known.slice(0, 25);
    expect(books).toHaveLength(25);
    const { jobId, messages } = await seedJob(
      [],
      0,
      books.map(([isbn]) => isbn),
    );
    const batch = createMessageBatch(
      "isbn-warming-queue",
      messages.map((m) => queueMessage(m)),
    );
    const ctx = createExecutionContext();
    await handleWarmBatch(batch, trackingEnv(), warmDeps());
    const result = await getQueueResult(batch, ctx);
    expect(result.explicitAcks).toHaveLength(25);
    expect(upstream.stats().byPath["/search.json"]).toBe(1);
    expect(upstream.stats().byPath["/books/v1/volumes"] ?? 0).toBe(0);
    for (const [isbn] of books) expect(await env.CACHE.get(cacheKeys.bookByIsbn(isbn))).not.toBeNull();
    expect(await taskCounts(jobId)).toEqual({ done: 25 });
  });

  it("finishes an ISBN no source knows as done with no works, and writes no marker for it", async () => {
    const isbn = "9780000000002";
    const { jobId, messages } = await seedJob([], 0, [isbn]);
    await runBatch(messages.map((m) => queueMessage(m)));
    expect(await taskCounts(jobId)).toEqual({ done: 1 });
    expect(await env.CACHE.get(cacheKeys.bookByIsbn(isbn))).toBeNull();
    expect(await env.CACHE.get(cacheKeys.processedMarker(`isbn:${isbn}`))).toBeNull();
  });

  it("retries a group that fails, then splits it so the bad ISBN stops failing its neighbours", async () => {
    const isbns = known.slice(0, 6).map(([isbn]) => isbn);
    const bad = isbns[2] as string;
    upstream.configure({ failingIsbns: [bad] });
    const { jobId, messages } = await seedJob([], 0, isbns);
    const first = await runBatch(messages.map((m) => queueMessage(m, 1)));
    // The whole group's request failed: every ISBN goes round again (none failed for good).
    expect(first.retryMessages).toHaveLength(6);
    const searchesBefore = upstream.stats().byPath["/search.json"] ?? 0;
    // Third delivery: groups of one, so the five good ISBNs are done and only the bad one is retried.
    const third = await runBatch(messages.map((m) => queueMessage(m, 3)));
    expect(third.retryMessages).toHaveLength(1);
    expect(await taskCounts(jobId)).toEqual({ done: 5, queued: 1 });
    expect((upstream.stats().byPath["/search.json"] ?? 0) - searchesBefore).toBeGreaterThanOrEqual(6);
  });

  it("groups deliveries by try (attempt, or own failures + 1): 25, then 5, then 1 per request", () => {
    const delivery = (attempts: number, i: number) =>
      ({ message: { attempts }, body: { authorKey: `isbn:${i}` } }) as never;
    const sizes = (attempts: number, n: number) =>
      groupDeliveries(
        Array.from({ length: n }, (_, i) => delivery(attempts, i)),
        25,
      ).map((g) => g.length);
    expect(sizes(1, 30)).toEqual([25, 5]);
    expect(sizes(2, 12)).toEqual([5, 5, 2]);
    expect(sizes(3, 3)).toEqual([1, 1, 1]);
    // A re-sent message starts at attempt 1 again: the item's own failures decide its group instead.
    const resent = (failures: number, i: number) =>
      ({ message: { attempts: 1 }, body: { authorKey: `isbn:${i}` }, failures }) as never;
    const mixed = [resent(0, 0), resent(1, 1), resent(2, 2), resent(0, 3), resent(2, 4)];
    expect(groupDeliveries(mixed, 25).map((g) => g.map((d) => d.failures))).toEqual([[0, 0], [1], [2], [2]]);
  });
});

describe("ISBN work items from an upload", () => {
  beforeEach(resetAll);

  it("queues the reader's books by ISBN beside the authors and reports them warm by kind", async () => {
    // The first 12 books of the real Goodreads export, bytes unchanged.
    const csv = goodreads2025.split("\n").slice(0, 13).join("\n");
    const parsed = parseLibraryExport(csv);
    const response = await uploadCsv(csv, "?maxDepth=0");
    expect(response.status).toBe(202);
    const created = (await response.json()) as JobCreated;
    expect(created.isbnsQueued).toBe(parsed.isbns.length);
    expect(created.isbnsQueued).toBeGreaterThan(8);
    expect(created.authorsQueued).toBe(parsed.authors.length);
    expect(created.isbnsUnusable).toEqual({ count: 0, examples: [] });
    const progress = (await waitForJob(created.jobId)) as unknown as JobProgress;
    expect(progress.status).toBe("completed");
    expect(progress.byKind.isbn.total).toBe(parsed.isbns.length);
    expect(progress.byKind.author.total).toBe(parsed.authors.length);
    expect(progress.byKind.isbn.warm).toBe(parsed.isbns.length);
    for (const isbn of parsed.isbns) expect(await env.CACHE.get(cacheKeys.bookByIsbn(isbn))).not.toBeNull();
  });

  it("counts a StoryGraph export's unusable ISBN/UID values in the 202", async () => {
    const csv = [
      "Title,Authors,Contributors,ISBN/UID",
      "A,Ann Author,,B0BJ2YTGJR",
      "B,Bob Author,,9.78053E+12",
    ].join("\n");
    const response = await uploadCsv(csv, "?maxDepth=0");
    const created = (await response.json()) as JobCreated;
    expect(created.isbnsQueued).toBe(0);
    expect(created.isbnsUnusable.count).toBe(2);
    expect(created.isbnsUnusable.examples.map((e) => e.reason)).toEqual(["asin", "scientific_notation"]);
    await waitForJob(created.jobId);
  });
});
