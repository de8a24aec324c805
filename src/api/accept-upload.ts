import type { Context } from "hono";
import { type ReadExport, readExport } from "../ingest/read-export";
import { optionsInQuery, readUpload } from "../ingest/upload";
import { artifactKey } from "../jobs/artifacts";
import { checkBacklog, decideBacklog } from "../jobs/backlog";
import { type CreatedJob, createJob } from "../jobs/create";
import { INPUT_NAME } from "../jobs/ingest-stage";
import { inputUpload } from "../jobs/input-upload";
import { withReadLinks } from "./auth";
import type { AppEnv } from "./context";
import { describeCreatedJob } from "./job-created";

/** Both upload routes: stream and parse the file, create (or replay) the job, answer 202 with its links. */
export async function acceptUpload(c: Context<AppEnv>, idempotencyKey: string | null): Promise<Response> {
  const config = c.var.config;
  const receivedAt = Date.now();
  // Options in the query are checked first (no body read yet); then the backlog: a full one refuses the
  // upload before a byte of the body is read or stored. A priority sent in the body is only known after
  // parsing, so an upload between the normal and the `high` limit is decided then (and its input discarded).
  const upload = readUpload(c.req.raw, config.UPLOAD_MAX_BYTES);
  const knownPriority = optionsInQuery(c.req.raw) ? upload.meta().options.priority : null;
  const backlog = await checkBacklog(c.env.DB, config, idempotencyKey, knownPriority);
  if (backlog.kind === "refuse") throw backlog.error;
  const jobId = crypto.randomUUID();
  // The file streams to R2 as the parser reads it; only a file that parsed into a job is kept (bad input is
  // a 4xx, and any error discards what was sent, so nothing stays stored).
  const input = inputUpload(c.env.ARTIFACTS, artifactKey(jobId, INPUT_NAME), "text/csv");
  let created: CreatedJob;
  let read: ReadExport;
  try {
    read = await readExport(
      { chunks: input.tee(upload.chunks), meta: () => upload.meta() },
      { maxRows: config.UPLOAD_MAX_ROWS },
    );
    // Where the time to 202 went before the job is written (ms since the request arrived; Date.now moves
    // across I/O only, so this is time spent waiting for the body and R2's parts, not parsing).
    console.log(JSON.stringify({ msg: "upload read", jobId, ms: { read: Date.now() - receivedAt } }));
    if (backlog.kind === "needs-priority") {
      const decided = decideBacklog(backlog.estimate, config, read.meta.options.priority);
      if (decided.kind === "refuse") throw decided.error;
    }
    created = await createJob(c.env, read, idempotencyKey, Date.now(), jobId, input);
  } catch (error) {
    await input.discard();
    throw error;
  }
  if (created.replayed) c.header("Idempotent-Replayed", "true");
  const answer = await withReadLinks(
    config,
    describeCreatedJob(config, created, read.parsed),
    created.job.read_link_version,
  );
  c.header("Location", answer.links.progress);
  return c.json(answer, 202);
}
