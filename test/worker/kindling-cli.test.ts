import { introspectWorkflow } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { runKindling } from "../../scripts/kindling/cli.ts";
import { resetAll } from "../support/db";
import { trackJob } from "../support/drain";
import { uploadCsv } from "../support/http";

/** The CLI against the real worker: its fetch goes to the worker's own handler. */
async function cli(...argv: string[]) {
  let out = "";
  let err = "";
  const code = await runKindling([...argv, "--url", "http://kindling.test", "--token", "test-token"], {
    fetch: (input, init) => exports.default.fetch(new Request(input as string, init)),
    stdout: { write: (t: string) => (out += t) },
    stderr: { write: (t: string) => (err += t) },
    sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 50))),
  });
  return { code, out, err };
}

describe("npm run kindling: arguments and exit codes", () => {
  beforeEach(resetAll);

  it("usage errors exit 2 and say why", async () => {
    for (const argv of [
      [],
      ["frobnicate"],
      ["status"],
      ["rerun", "x", "--from", "ingest"],
      ["jobs", "extra"],
      ["status", "x", "--nope"],
      ["cancel", "x", "--follow"],
    ]) {
      const { code, err } = await cli(...argv);
      expect({ argv, code }).toEqual({ argv, code: 2 });
      expect(err).toContain("usage: npm run kindling");
    }
    const help = await cli("--help");
    expect(help.err).toBe("");
    expect(help.code).toBe(0);
  });

  it("runs a job's commands against the API: 0 when done, 1 when refused or not found", async () => {
    const introspector = await introspectWorkflow(env.JOB_WORKFLOW);
    try {
      const response = await uploadCsv("Title,Author\nSapiens,Yuval Noah Harari\n", "?maxDepth=0");
      const { jobId } = (await response.json()) as { jobId: string };
      trackJob(jobId);
      const [instance] = await introspector.get();
      await instance?.waitForStatus("complete");

      const status = await cli("status", jobId);
      expect(status.code).toBe(0);
      expect(status.out).toContain(`${jobId}  completed`);
      expect(status.out).toMatch(/\[1\/4\] ✓ ingest {2}SUCCESS/);
      expect(status.out).toMatch(/\[4\/4\] ✓ publish {1}SUCCESS/);

      const jobs = await cli("jobs");
      expect(jobs.code).toBe(0);
      expect(jobs.out).toContain(jobId);

      const log = await cli("log", jobId, "--follow");
      expect(log.code).toBe(0);
      const lines = log.out
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { type: string; stage: string | null });
      expect(lines.filter((l) => l.type === "stage_end").map((l) => l.stage)).toEqual([
        "ingest",
        "warm",
        "verify",
        "publish",
      ]);

      const manifest = await cli("manifest", jobId);
      expect(manifest.code).toBe(0);
      expect(JSON.parse(manifest.out)).toMatchObject({ kind: "manifest", jobId });

      const cancel = await cli("cancel", jobId);
      expect(cancel.code).toBe(1);
      expect(cancel.err).toContain("409 job_finished");
      const retry = await cli("retry", jobId);
      expect(retry.code).toBe(1);
      expect(retry.err).toContain("409 nothing_to_retry");
      const missing = await cli("status", crypto.randomUUID());
      expect(missing.code).toBe(1);
      expect(missing.err).toContain("404 not_found");
      // The log is read as text: its error body is still read as the API's JSON error.
      const missingLog = await cli("log", crypto.randomUUID());
      expect(missingLog.code).toBe(1);
      expect(missingLog.err).toContain("404 not_found");

      const rerun = await cli("rerun", jobId, "--from", "publish");
      expect(rerun.code).toBe(0);
      expect(rerun.out).toContain("publish");
    } finally {
      await introspector.dispose();
    }
  });

  it("an unreachable service exits 1", async () => {
    const code = await runKindling(["jobs"], {
      fetch: () => Promise.reject(new Error("connection refused")),
      stdout: { write: () => true },
      stderr: { write: () => true },
    });
    expect(code).toBe(1);
  });
});
