/**
 * The operator CLI's logic (scripts/kindling.ts is the entry point): parse the arguments, call the API,
 * print, and answer an exit code (0 ok, 1 refused or failed, 2 usage). Everything it touches is passed in,
 * so tests drive it with a fake fetch and capture its output.
 */
import { type ArgsDef, parseArgs } from "citty";
import { kindlingClient } from "../lib/api-client.ts";
import type { paths } from "../lib/api-types.ts";

/** GET /api/jobs/:id's answer (and every control route's), as the generated client types it. */
type JobView = paths["/api/jobs/{id}"]["get"]["responses"][200]["content"]["application/json"];
type JobStageView = JobView["stages"][number];
type RerunFrom = "warm" | "verify" | "publish";

export const DEFAULT_URL = "http://127.0.0.1:8787";
export const DEFAULT_TOKEN = "dev-token";
const STAGES_FROM: readonly RerunFrom[] = ["warm", "verify", "publish"];
const isRerunFrom = (value: string | undefined): value is RerunFrom =>
  STAGES_FROM.includes(value as RerunFrom);
const FINISHED = new Set(["completed", "completed_with_errors", "cancelled", "failed"]);

export const USAGE = `usage: npm run kindling -- COMMAND [JOB] [options]
  jobs                      recent jobs
  status JOB                the job and one progress line per stage
  cancel JOB                stop the job: open tasks end cancelled
  pause JOB | resume JOB    park the job / continue it
  retry JOB                 send its failed and dead tasks round again
  rerun JOB --from STAGE    run again from warm, verify or publish
  log JOB [--follow]        the job's NDJSON log (--follow: keep tailing until the job is finished)
  manifest JOB              the job's manifest.json
  --url URL                 Kindling base URL (default ${DEFAULT_URL}; env KINDLING_URL)
  --token TOKEN             API token (default ${DEFAULT_TOKEN}; env KINDLING_TOKEN)
  -h, --help                this help
Exit codes: 0 ok · 1 refused (409), not found, failed or unreachable · 2 bad usage.`;

export interface CliIo {
  fetch: typeof fetch;
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  env?: Record<string, string | undefined>;
  /** Between --follow polls (tests pass a short one). */
  sleep?: (ms: number) => Promise<void>;
}

class Exit extends Error {
  readonly code: number;
  constructor(code: number) {
    super(`exit ${code}`);
    this.code = code;
  }
}

export async function runKindling(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    await dispatch(argv, io);
    return 0;
  } catch (error) {
    if (error instanceof Exit) return error.code;
    io.stderr.write(`kindling: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}

function usage(io: CliIo, message: string): never {
  io.stderr.write(`kindling: ${message}\n\n${USAGE}\n`);
  throw new Exit(2);
}

const ARGS = {
  url: { type: "string" },
  token: { type: "string" },
  from: { type: "string" },
  follow: { type: "boolean", alias: "f" },
  help: { type: "boolean", alias: "h" },
} as const satisfies ArgsDef;
const KNOWN = new Set(["_", "url", "token", "from", "follow", "f", "help", "h"]);

/** citty parses (it runs in Node and in workerd alike); unknown flags and flags without values are usage errors. */
function parse(argv: readonly string[], io: CliIo) {
  const parsed = parseArgs([...argv], ARGS);
  const unknown = Object.keys(parsed).find((k) => !KNOWN.has(k));
  if (unknown) usage(io, `unknown option --${unknown}`);
  for (const name of ["url", "token", "from"] as const) {
    const value = parsed[name];
    if (value !== undefined && (typeof value !== "string" || value === ""))
      usage(io, `--${name} needs a value`);
  }
  const values = {
    url: parsed.url as string | undefined,
    token: parsed.token as string | undefined,
    from: parsed.from as string | undefined,
    follow: parsed.follow === true,
    help: parsed.help === true,
  };
  return { values, positionals: parsed._.map(String) };
}

const JOB_COMMANDS = new Set(["status", "cancel", "pause", "resume", "retry", "rerun", "log", "manifest"]);

async function dispatch(argv: readonly string[], io: CliIo): Promise<void> {
  const { values, positionals } = parse(argv, io);
  if (values.help) {
    io.stdout.write(`${USAGE}\n`);
    return;
  }
  const [command, job, ...extra] = positionals;
  if (!command) usage(io, "a command is required");
  if (command === "jobs") {
    if (job) usage(io, "jobs takes no JOB");
  } else if (!JOB_COMMANDS.has(command)) usage(io, `unknown command "${command}"`);
  else if (!job) usage(io, `${command} needs a JOB id`);
  if (extra.length > 0) usage(io, `unexpected argument "${extra[0]}"`);
  if (values.from !== undefined && command !== "rerun") usage(io, "--from is only for rerun");
  if (values.follow && command !== "log") usage(io, "--follow is only for log");
  const api = client(
    io,
    values.url ?? io.env?.KINDLING_URL ?? DEFAULT_URL,
    values.token ?? io.env?.KINDLING_TOKEN ?? DEFAULT_TOKEN,
  );
  const path = { path: { id: job ?? "" } };
  switch (command) {
    case "jobs": {
      const { jobs } = await api.call(api.client.GET("/api/jobs"));
      for (const j of jobs)
        io.stdout.write(`${j.jobId}  ${j.status.padEnd(21)} ${j.finished}/${j.tasks}  ${j.createdAt}\n`);
      return;
    }
    case "status":
      io.stdout.write(formatStatus(await api.call(api.client.GET("/api/jobs/{id}", { params: path }))));
      return;
    case "cancel":
      io.stdout.write(
        formatStatus(await api.call(api.client.POST("/api/jobs/{id}/cancel", { params: path }))),
      );
      return;
    case "pause":
      io.stdout.write(
        formatStatus(await api.call(api.client.POST("/api/jobs/{id}/pause", { params: path }))),
      );
      return;
    case "resume":
      io.stdout.write(
        formatStatus(await api.call(api.client.POST("/api/jobs/{id}/resume", { params: path }))),
      );
      return;
    case "retry": {
      const result = await api.call(api.client.POST("/api/jobs/{id}/retry", { params: path }));
      io.stdout.write(`retry: ${result.requeued} tasks sent round again\n`);
      return;
    }
    case "rerun": {
      const from = values.from;
      if (!isRerunFrom(from)) usage(io, `rerun needs --from ${STAGES_FROM.join("|")}`);
      const params = { ...path, query: { from } };
      io.stdout.write(formatStatus(await api.call(api.client.POST("/api/jobs/{id}/rerun", { params }))));
      return;
    }
    case "manifest": {
      const manifest = await api.call(api.client.GET("/api/jobs/{id}/manifest", { params: path }));
      io.stdout.write(`${JSON.stringify(manifest, null, 2)}\n`);
      return;
    }
    case "log":
      await tail(api, job ?? "", values.follow === true, io);
      return;
  }
}

/** The generated client (scripts/lib/api-client.ts) through the CLI's fetch; `call` turns a refusal into an error. */
function client(io: CliIo, base: string, token: string) {
  const client = kindlingClient(base.replace(/\/$/, ""), token, (request) => io.fetch(request));
  async function call<T>(pending: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
    let result: { data?: T; error?: unknown; response: Response };
    try {
      result = await pending;
    } catch (error) {
      throw new Error(
        `cannot reach Kindling at ${base}: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    const { response } = result;
    if (!response.ok || result.data === undefined) {
      // A text-parsed answer (the log) carries its error body as text: read it as the API's JSON error.
      const raw = typeof result.error === "string" ? safeJson(result.error) : result.error;
      const body = raw as { error?: { code?: string; message?: string } } | undefined;
      throw new Error(
        `${response.status} ${body?.error?.code ?? "error"}: ${body?.error?.message ?? response.statusText}`,
      );
    }
    return result.data;
  }
  return { client, call };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

async function tail(api: ReturnType<typeof client>, id: string, follow: boolean, io: CliIo): Promise<void> {
  const sleep = io.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms)));
  let since = 0;
  for (;;) {
    const pending = api.client.GET("/api/jobs/{id}/log", {
      params: { path: { id }, query: { since } },
      parseAs: "text",
    });
    const text = await api.call(
      pending.then((r) => ({ ...r, data: r.response.ok ? (r.data ?? "") : undefined })),
    );
    if (text) io.stdout.write(text);
    since = Number((await pending).response.headers.get("X-Next-Since") ?? since);
    if (!follow) return;
    if (!text) {
      const job = await api.call(api.client.GET("/api/jobs/{id}", { params: { path: { id } } }));
      const publish = job.stages.find((s) => s.stage === "publish");
      const settled = publish?.status !== "PENDING" && publish?.status !== "RUNNING";
      if (FINISHED.has(job.status) && settled) return;
      await sleep(1000);
    }
  }
}

const MARK: Record<JobStageView["status"], string> = {
  PENDING: "·",
  RUNNING: "▶",
  SUCCESS: "✓",
  FAILED: "✗",
  SKIPPED: "–",
  CANCELLED: "■",
};

function seconds(stage: JobStageView): string {
  if (!stage.startedAt) return "";
  const end = stage.endedAt ? Date.parse(stage.endedAt) : Date.now();
  return ` ${((end - Date.parse(stage.startedAt)) / 1000).toFixed(1)} s`;
}

/** Seed 002's progress lines: the job, then `[n/4] stage STATUS time counts` per stage. */
export function formatStatus(job: JobView): string {
  const c = job.counts;
  const lines = [
    `${job.jobId}  ${job.status}  ${job.percent}%  done ${c.done} skipped ${c.skipped} failed ${c.failed} dead ${c.dead} cancelled ${c.cancelled} open ${c.pending + c.queued + c.running} / ${c.total}`,
  ];
  job.stages.forEach((s, i) => {
    const counts = s.counts
      ? `  ${Object.entries(s.counts)
          .map(([k, v]) => `${k}=${v}`)
          .join(" ")}`
      : s.stage === "warm" && s.status === "RUNNING"
        ? `  ${job.percent}% (${c.total - c.pending - c.queued - c.running}/${c.total})${job.etaSeconds ? ` eta ${job.etaSeconds} s` : ""}`
        : "";
    lines.push(
      `  [${i + 1}/${job.stages.length}] ${MARK[s.status]} ${s.stage.padEnd(8)}${s.status}${seconds(s)}${counts}${s.message ? `  — ${s.message}` : ""}`,
    );
  });
  return `${lines.join("\n")}\n`;
}
