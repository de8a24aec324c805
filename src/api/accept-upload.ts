import type { Context } from "hono";
import { readExport } from "../ingest/read-export";
import { readUpload, type UploadSource } from "../ingest/upload";
import { createJob } from "../jobs/create";
import { withReadLinks } from "./auth";
import type { AppEnv } from "./context";
import { describeCreatedJob } from "./job-created";

/** Both upload routes: stream and parse the file, create (or replay) the job, answer 202 with its links. */
export async function acceptUpload(c: Context<AppEnv>, idempotencyKey: string | null): Promise<Response> {
  const config = c.var.config;
  const kept = keepBytes(readUpload(c.req.raw, config.UPLOAD_MAX_BYTES));
  const read = await readExport(kept.source, { maxRows: config.UPLOAD_MAX_ROWS });
  // Only a file that parsed is stored (bad input is a 4xx before anything is written).
  const created = await createJob(c.env, read, idempotencyKey, Date.now(), kept.bytes());
  if (created.replayed) c.header("Idempotent-Replayed", "true");
  // The ISBN items' messages go out after the response (a timer turn later, so they do not compete with
  // building it): the 202 waits for the authors only.
  const afterResponse = created.sendAfterResponse;
  if (afterResponse) {
    c.executionCtx.waitUntil(new Promise((resolve) => setTimeout(resolve, 0)).then(afterResponse));
  }
  const answer = await withReadLinks(
    config,
    describeCreatedJob(config, created, read.parsed),
    created.job.read_link_version,
  );
  c.header("Location", answer.links.progress);
  return c.json(answer, 202);
}

/**
 * The upload's file bytes as they pass to the parser, kept for the job's R2 copy (jobs/<id>/input). The
 * upload is bounded by UPLOAD_MAX_BYTES, so this holds at most that much.
 */
function keepBytes(source: UploadSource): { source: UploadSource; bytes: () => Uint8Array } {
  const chunks: Uint8Array[] = [];
  async function* tee() {
    for await (const chunk of source.chunks) {
      chunks.push(chunk);
      yield chunk;
    }
  }
  return {
    source: { chunks: tee(), meta: () => source.meta() },
    bytes: () => {
      const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
      let offset = 0;
      for (const chunk of chunks) {
        out.set(chunk, offset);
        offset += chunk.byteLength;
      }
      return out;
    },
  };
}
