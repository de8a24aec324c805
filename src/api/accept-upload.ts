import type { Context } from "hono";
import { readExport } from "../ingest/read-export";
import { readUpload } from "../ingest/upload";
import { createJob } from "../jobs/create";
import { withReadLinks } from "./auth";
import type { AppEnv } from "./context";
import { describeCreatedJob } from "./job-created";

/** Both upload routes: stream and parse the file, create (or replay) the job, answer 202 with its links. */
export async function acceptUpload(c: Context<AppEnv>, idempotencyKey: string | null): Promise<Response> {
  const config = c.var.config;
  const source = readUpload(c.req.raw, config.UPLOAD_MAX_BYTES);
  const read = await readExport(source, { maxRows: config.UPLOAD_MAX_ROWS });
  const created = await createJob(c.env, read, idempotencyKey, Date.now());
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
