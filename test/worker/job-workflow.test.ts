import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { sha256Hex } from "../../src/jobs/artifacts";
import { type Manifest, manifestSchema } from "../../src/jobs/stages";
import { jobRow, resetAll, taskCounts } from "../support/db";
import { call, TOKEN } from "../support/http";
import { control, logLines, stageRows, uploadWatched } from "../support/lifecycle";

const CSV =
  "Title,Author\nThe Silk Roads,Peter Frankopan\nSapiens,Yuval Noah Harari\nOther,peter  frankopan\n";

describe("a job's Workflow: ingest → warm → verify → publish", () => {
  beforeEach(resetAll);

  it("runs the stages in order, each after its gate, and publishes a manifest that matches R2", async () => {
    const { jobId, instance, dispose } = await uploadWatched(CSV);
    try {
      await instance.waitForStatus("complete");
      expect(await instance.getOutput()).toEqual({ jobId, stage: "publish", outcome: "SUCCESS" });
      // Each gate let its stage run, in order.
      for (const stage of ["ingest", "warm", "verify", "publish"])
        expect(await instance.waitForStepResult({ name: `${stage}: gate` })).toMatchObject({ action: "run" });
    } finally {
      await dispose();
    }
    expect((await stageRows(jobId)).map((r) => `${r.stage}:${r.status}`)).toEqual([
      "ingest:SUCCESS",
      "warm:SUCCESS",
      "verify:SUCCESS",
      "publish:SUCCESS",
    ]);
    // The log has one start and one end per stage, in stage order.
    const lines = await logLines(jobId);
    const stageLines = lines.filter((l) => l.type === "stage_start" || l.type === "stage_end");
    expect(stageLines.map((l) => `${l.type}:${l.stage}`)).toEqual([
      "stage_start:ingest",
      "stage_end:ingest",
      "stage_start:warm",
      "stage_end:warm",
      "stage_start:verify",
      "stage_end:verify",
      "stage_start:publish",
      "stage_end:publish",
    ]);
    expect(lines.map((l) => l.id)).toEqual([...lines.map((l) => l.id as number)].sort((a, b) => a - b));
    // `since` is the tailing cursor: only lines after it come back.
    expect(await logLines(jobId, lines[3]?.id as number)).toEqual(lines.slice(4));

    const response = await call(`/api/jobs/${jobId}/manifest`, {
      headers: { Authorization: `Bearer ${TOKEN}` },
    });
    expect(response.status).toBe(200);
    const manifest: Manifest = manifestSchema.parse(await response.json());
    expect(manifest.jobId).toBe(jobId);
    expect(manifest.inputSha256).toBe(await sha256Hex(new TextEncoder().encode(CSV)));
    expect(manifest.stages.map((s) => s.status)).toEqual(["SUCCESS", "SUCCESS", "SUCCESS", "SUCCESS"]);
    for (const stage of manifest.stages) {
      expect(stage.startedAt).not.toBeNull();
      expect(Date.parse(stage.endedAt ?? "")).toBeGreaterThanOrEqual(Date.parse(stage.startedAt ?? ""));
    }
    // Every artifact listed is in R2 with exactly the recorded checksum.
    expect(manifest.artifacts.map((a) => a.key.split("/").at(-1))).toEqual([
      "input",
      "plan.json",
      "warm.json",
      "verify.json",
    ]);
    // The upload is stored gzip-compressed: its size is the stored one, its sha256 the file's.
    expect(manifest.artifacts[0]?.contentEncoding).toBe("gzip");
    for (const artifact of manifest.artifacts) {
      const object = (await env.ARTIFACTS.get(artifact.key)) as R2ObjectBody;
      expect(object.size).toBe(artifact.bytes);
      const body =
        artifact.contentEncoding === "gzip"
          ? object.body.pipeThrough(new DecompressionStream("gzip"))
          : object.body;
      const bytes = new Uint8Array(await new Response(body).arrayBuffer());
      expect(await sha256Hex(bytes)).toBe(artifact.sha256);
    }
    const counts = await taskCounts(jobId);
    expect(manifest.stages[1]?.counts).toMatchObject({ total: 2, done: counts.done ?? 0, open: 0 });
    expect(manifest.stages[0]?.counts).toEqual({ rows: 3, duplicatesSkipped: 1, items: 2 });
    expect(manifest.verify?.invariants.every((c) => c.ok)).toBe(true);
    expect(manifest.verify?.cache).toMatchObject({ checked: counts.done ?? 0, stillMissing: [] });
    expect(manifest.cost.upstreamRequests?.openlibrary).toBeGreaterThan(0);
    // The consumer's counters: two items, each sent, delivered and acked once on this happy path.
    expect(manifest.cost.queue).toEqual({ sent: 2, delivered: 2, retried: 0, acked: 2 });
    expect(manifest.cost.queueOperations).toBe(6);
    expect(manifest.cost.consumerInvocations).toBeGreaterThanOrEqual(1);
    expect(manifest.cost.kvWrites).toBeGreaterThan(0);
    expect(manifest.cost.estimateUsd.total).toBeGreaterThan(0);

    const view = (await (
      await call(`/api/jobs/${jobId}`, { headers: { Authorization: `Bearer ${TOKEN}` } })
    ).json()) as {
      stage: unknown;
      stages: { stage: string; status: string }[];
    };
    expect(view.stage).toEqual({ name: "publish", status: "SUCCESS" });
    expect(view.stages).toHaveLength(4);
    expect((await jobRow(jobId))?.status).toBe("completed");
  });
});

describe("gates and rerun-from", () => {
  beforeEach(resetAll);

  it("a gate refuses an invalid plan artifact: warm FAILED naming the check, later stages SKIPPED, job failed", async () => {
    // ingest's result is replaced by one whose artifact breaks the plan contract (items ≠ counts.items).
    const bad = new TextEncoder().encode(
      JSON.stringify({
        kind: "plan",
        jobId: crypto.randomUUID(),
        inputSha256: "0".repeat(64),
        counts: { rows: 1, duplicatesSkipped: 0, items: 5 },
        items: [],
      }),
    );
    await env.ARTIFACTS.put("test/bad-plan.json", bad);
    const artifact = { key: "test/bad-plan.json", sha256: await sha256Hex(bad), bytes: bad.byteLength };
    const introspector = await (await import("cloudflare:test")).introspectWorkflow(env.JOB_WORKFLOW);
    await introspector.modifyAll(async (m) => {
      await m.mockStepResult({ name: "ingest: run" }, { status: "SUCCESS", counts: { items: 5 }, artifact });
    });
    try {
      const response = await (await import("../support/http")).uploadCsv(CSV, "?maxDepth=0");
      const { jobId } = (await response.json()) as { jobId: string };
      const [instance] = await introspector.get();
      await instance?.waitForStatus("complete");
      expect(await instance?.getOutput()).toMatchObject({ stage: "warm", outcome: "FAILED" });
      const rows = await stageRows(jobId);
      expect(rows.map((r) => `${r.stage}:${r.status}`)).toEqual([
        "ingest:SUCCESS",
        "warm:FAILED",
        "verify:SKIPPED",
        "publish:SKIPPED",
      ]);
      expect(rows[1]?.message).toContain("gate ingest_artifact_contract");
      expect(rows[1]?.message).toContain("plan.items.length must equal plan.counts.items");
      const job = await jobRow(jobId);
      expect(job?.status).toBe("failed");
      // Counters still equal the task rows (open tasks were closed as cancelled, and counted).
      const counts = await taskCounts(jobId);
      expect((counts.pending ?? 0) + (counts.queued ?? 0) + (counts.running ?? 0)).toBe(0);
      expect(job?.cancelled_count).toBe(counts.cancelled ?? 0);
      expect(job?.done_count).toBe(counts.done ?? 0);
      const gateLine = (await logLines(jobId)).find((l) => l.type === "gate_failed");
      expect(gateLine).toMatchObject({ stage: "warm" });
      // A rerun is refused, naming the stage that blocks it: ingest's artifact breaks its contract.
      const refused = await control(jobId, "rerun", "?from=verify");
      expect(refused.status).toBe(409);
      expect(await refused.json()).toMatchObject({
        error: { code: "stage_blocked", details: { blockingStage: "ingest" } },
      });
    } finally {
      await introspector.dispose();
    }
  });

  it("rerun from verify runs verify and publish again, not ingest or warm", async () => {
    const { jobId, instance, dispose } = await uploadWatched(CSV);
    await instance.waitForStatus("complete");
    const before = await logLines(jobId);
    const response = await control(jobId, "rerun", "?from=verify");
    expect(response.status).toBe(200);
    const deadline = Date.now() + 15_000;
    let lines = await logLines(jobId);
    while (
      Date.now() < deadline &&
      lines.filter((l) => l.type === "stage_end" && l.stage === "publish").length < 2
    ) {
      await new Promise((r) => setTimeout(r, 50));
      lines = await logLines(jobId);
    }
    const after = lines.slice(before.length);
    expect(after[0]).toMatchObject({ type: "operator", action: "rerun", from: "verify" });
    expect(after.filter((l) => l.type === "stage_start").map((l) => l.stage)).toEqual(["verify", "publish"]);
    expect((await stageRows(jobId)).every((r) => r.status === "SUCCESS")).toBe(true);
    // An unknown stage is a 400 from the validator.
    expect((await control(jobId, "rerun", "?from=ingest")).status).toBe(400);
    await dispose();
  });
});

describe("retry (redrive) reruns the stages after warm", () => {
  beforeEach(resetAll);

  it("a redriven job warms, verifies and publishes again; ingest is not rerun", async () => {
    const { upstream } = await import("../support/upstream");
    upstream.configure({ failingAuthors: ["Broken Writer"] });
    const { jobId, instance, dispose } = await uploadWatched(
      "Title,Author\nA,Broken Writer\nB,Peter Frankopan\n",
    );
    try {
      await instance.waitForStatus("complete");
      expect((await jobRow(jobId))?.status).toBe("completed_with_errors");
      upstream.configure({ failingAuthors: [] });
      const before = (await logLines(jobId)).length;
      const retry = await (await import("../support/http")).callAsAdmin(`/api/jobs/${jobId}/retry`, {
        method: "POST",
      });
      expect(retry.status).toBe(202);
      const deadline = Date.now() + 20_000;
      let after: Record<string, unknown>[] = [];
      while (Date.now() < deadline) {
        after = (await logLines(jobId)).slice(before);
        if (after.some((l) => l.type === "stage_end" && l.stage === "publish")) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(after[0]).toMatchObject({ type: "operator", action: "retry" });
      expect(after.filter((l) => l.type === "stage_start").map((l) => l.stage)).toEqual([
        "warm",
        "verify",
        "publish",
      ]);
      expect((await jobRow(jobId))?.status).toBe("completed");
      const manifest = (await (
        await call(`/api/jobs/${jobId}/manifest`, { headers: { Authorization: `Bearer ${TOKEN}` } })
      ).json()) as Manifest;
      expect(manifest.jobStatus).toBe("completed");
      expect(manifest.stages[1]?.counts).toMatchObject({ done: 2, dead: 0, open: 0 });
    } finally {
      await dispose();
    }
  });
});
