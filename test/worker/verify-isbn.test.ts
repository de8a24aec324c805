import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { cacheKeys } from "../../src/cache/keys";
import { loadConfig } from "../../src/config";
import { isbnItemKey } from "../../src/ingest/isbn";
import { readArtifact } from "../../src/jobs/artifacts";
import { verifyReportSchema } from "../../src/jobs/stages";
import { runVerify } from "../../src/jobs/verify-stage";
import { handleWarmBatch } from "../../src/warm/consumer";
import { resetAll, taskCounts } from "../support/db";
import { trackingEnv } from "../support/drain";
import { queueMessage, seedJob, warmDeps } from "../support/jobs";
import { EXPORT_BOOKS } from "../support/upstream/export-books.ts";
import { openLibraryKnowsIsbn } from "../support/upstream/export-catalogue.ts";

const known = EXPORT_BOOKS.filter(([isbn]) => openLibraryKnowsIsbn(isbn)).map(([isbn]) => isbn);

describe("verify checks done ISBN items' editions in KV", () => {
  beforeEach(resetAll);

  it("re-warms a missing book:isbn key from D1 once, and reports one it cannot restore", async () => {
    const isbns = known.slice(0, 4);
    const { jobId, messages } = await seedJob([], 0, isbns);
    const batch = createMessageBatch(
      "author-warming-queue",
      messages.map((m) => queueMessage(m)),
    );
    await handleWarmBatch(batch, trackingEnv(), warmDeps());
    await getQueueResult(batch, createExecutionContext());
    expect(await taskCounts(jobId)).toEqual({ done: 4 });
    const [restorable, lost] = isbns as [string, string];
    // Both editions leave KV; the second also loses its durable copy in D1, so only the first can come back.
    await env.CACHE.delete(cacheKeys.bookByIsbn(restorable));
    await env.CACHE.delete(cacheKeys.bookByIsbn(lost));
    await env.DB.prepare("DELETE FROM author_works WHERE author_key = ?1").bind(isbnItemKey(lost)).run();

    const end = await runVerify(env, jobId, loadConfig(env));
    expect(end).toMatchObject({
      status: "SUCCESS",
      counts: { sampled: 4, missingBefore: 2, stillMissing: 1 },
    });
    const report = await readArtifact(env.ARTIFACTS, end?.artifact ?? null, verifyReportSchema);
    if (!report.ok) throw new Error(report.detail);
    expect(report.value.cache).toMatchObject({ checked: 4, missingBefore: 2, rewarmed: 2 });
    expect(report.value.cache.stillMissing).toEqual([
      { item: isbnItemKey(lost), keys: [cacheKeys.bookByIsbn(lost)] },
    ]);
    const back = await env.CACHE.get<{ isbn13: string }>(cacheKeys.bookByIsbn(restorable), "json");
    expect(back?.isbn13).toBe(restorable);
  });
});
