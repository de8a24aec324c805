/**
 * Node 22 http server around the fake upstream handler (run directly; Node strips the types):
 *
 *   node test/support/upstream/server.ts [--port 8790] [--host 127.0.0.1] [--latency-ms N] [--error-rate F]
 *        [--rate-429 F] [--hang-rate F] [--malformed-rate F] [--rate-limit N] [--failing-fraction F]
 *
 * Every flag also reads an env var: FAKE_UPSTREAM_PORT, FAKE_UPSTREAM_HOST, FAKE_UPSTREAM_LATENCY_MS,
 * FAKE_UPSTREAM_ERROR_RATE, FAKE_UPSTREAM_RATE_429, FAKE_UPSTREAM_HANG_RATE, FAKE_UPSTREAM_MALFORMED_RATE,
 * FAKE_UPSTREAM_RATE_LIMIT, FAKE_UPSTREAM_FAILING_FRACTION (flags win). `--port 0` picks a free port.
 *
 * On listen it prints exactly one line to stdout, `fake-upstream listening on http://HOST:PORT`, which
 * tools parse. Node scripts can `import { startFakeUpstream }` from this file instead (dev-offline does).
 */
import { realpathSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import {
  createFakeUpstream,
  type FakeUpstream,
  type FakeUpstreamOptions,
  validateFaultPatch,
} from "./handler.ts";

export type StartOptions = FakeUpstreamOptions & {
  /** Default 8790; 0 picks a free port. */
  port?: number;
  /** Default 127.0.0.1 (loopback only). */
  host?: string;
};

export interface RunningFakeUpstream {
  /** Base URL, e.g. "http://127.0.0.1:8790". */
  url: string;
  port: number;
  close(): Promise<void>;
  upstream: FakeUpstream;
}

export const DEFAULT_PORT = 8790;
export const DEFAULT_HOST = "127.0.0.1";

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

async function toWebRequest(req: IncomingMessage, signal: AbortSignal): Promise<Request> {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
  }
  const method = req.method ?? "GET";
  const hasBody = method !== "GET" && method !== "HEAD";
  const body = hasBody ? await readBody(req) : undefined;
  // Only path + query matter to the handler; the origin is a placeholder.
  const url = new URL(req.url ?? "/", "http://fake-upstream");
  return new Request(url, {
    method,
    headers,
    signal,
    ...(body === undefined || body.length === 0 ? {} : { body: new Uint8Array(body) }),
  });
}

async function serve(upstream: FakeUpstream, req: IncomingMessage, res: ServerResponse): Promise<void> {
  // Fires when the client goes away before we answered, releasing hanging requests.
  const controller = new AbortController();
  res.on("close", () => {
    if (!res.writableFinished) controller.abort();
  });
  try {
    const request = await toWebRequest(req, controller.signal);
    const response = await upstream.fetch(request, { signal: controller.signal });
    const body = Buffer.from(await response.arrayBuffer());
    const headers: Record<string, string> = {};
    response.headers.forEach((value, name) => {
      headers[name] = value;
    });
    if (req.method !== "HEAD") headers["content-length"] = String(body.length);
    res.writeHead(response.status, headers);
    res.end(req.method === "HEAD" ? undefined : body);
  } catch (err) {
    if (controller.signal.aborted) {
      res.destroy();
      return;
    }
    if (!res.headersSent) {
      res.writeHead(500, { "content-type": "application/json; charset=utf-8" });
      res.end(
        JSON.stringify({ error: `fake-upstream crashed: ${err instanceof Error ? err.message : err}` }),
      );
    } else {
      res.destroy();
    }
  }
}

/** Starts the fake upstream on loopback; resolves once it is listening. */
export async function startFakeUpstream(opts: StartOptions = {}): Promise<RunningFakeUpstream> {
  const { port = DEFAULT_PORT, host = DEFAULT_HOST, ...upstreamOptions } = opts;
  const upstream = createFakeUpstream(upstreamOptions);
  const server = createServer((req, res) => {
    void serve(upstream, req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const urlHost = address.address.includes(":") ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost}:${address.port}`,
    port: address.port,
    upstream,
    close: () => {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Hanging requests hold their connections open: drop them (their AbortSignals fire).
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------------------------------------

const USAGE = `usage: node test/support/upstream/server.ts [options]
  --port N              listen port (default ${DEFAULT_PORT}; 0 = any free port)   env FAKE_UPSTREAM_PORT
  --host H              listen address (default ${DEFAULT_HOST})                  env FAKE_UPSTREAM_HOST
  --latency-ms N        added to every book-API answer                          env FAKE_UPSTREAM_LATENCY_MS
  --error-rate F        fraction answered 500                                   env FAKE_UPSTREAM_ERROR_RATE
  --rate-429 F          fraction answered 429 + Retry-After                     env FAKE_UPSTREAM_RATE_429
  --hang-rate F         fraction never answered                                 env FAKE_UPSTREAM_HANG_RATE
  --malformed-rate F    fraction answered 200 with truncated JSON               env FAKE_UPSTREAM_MALFORMED_RATE
  --rate-limit N        requests/second above which answers are 429 (0 = off)   env FAKE_UPSTREAM_RATE_LIMIT
  --failing-fraction F  fraction of authors that always get 500                 env FAKE_UPSTREAM_FAILING_FRACTION
Control: GET /__stats, GET|POST /__config, POST /__reset, GET /health`;

function numberOption(name: string, flag: string | undefined, envName: string): number | undefined {
  const raw = flag ?? process.env[envName];
  if (raw === undefined || raw.trim() === "") return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n)) throw new Error(`--${name} must be a number, got "${raw}"`);
  return n;
}

/** parseArgs options for flags that take a value, by name. */
export function stringFlags<const N extends string>(...names: N[]): Record<N, { type: "string" }> {
  return Object.fromEntries(names.map((name) => [name, { type: "string" }])) as Record<N, { type: "string" }>;
}

/** The stand-in's fault flags, shared with `npm run dev:offline` (which passes them on). */
export const FAULT_FLAGS = stringFlags(
  "latency-ms",
  "error-rate",
  "rate-429",
  "hang-rate",
  "malformed-rate",
  "rate-limit",
  "failing-fraction",
);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      ...stringFlags("port", "host"),
      ...FAULT_FLAGS,
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }

  const port = numberOption("port", values.port, "FAKE_UPSTREAM_PORT") ?? DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`--port must be 0–65535, got ${port}`);
  const host = values.host ?? process.env.FAKE_UPSTREAM_HOST ?? DEFAULT_HOST;
  const errorRate = numberOption("error-rate", values["error-rate"], "FAKE_UPSTREAM_ERROR_RATE");
  const candidate = {
    latencyMs: numberOption("latency-ms", values["latency-ms"], "FAKE_UPSTREAM_LATENCY_MS"),
    statusRates: errorRate === undefined ? undefined : { "500": errorRate },
    rate429: numberOption("rate-429", values["rate-429"], "FAKE_UPSTREAM_RATE_429"),
    hangRate: numberOption("hang-rate", values["hang-rate"], "FAKE_UPSTREAM_HANG_RATE"),
    malformedRate: numberOption("malformed-rate", values["malformed-rate"], "FAKE_UPSTREAM_MALFORMED_RATE"),
    rateLimitPerSecond: numberOption("rate-limit", values["rate-limit"], "FAKE_UPSTREAM_RATE_LIMIT"),
    failingAuthorFraction: numberOption(
      "failing-fraction",
      values["failing-fraction"],
      "FAKE_UPSTREAM_FAILING_FRACTION",
    ),
  };
  const faults = validateFaultPatch(
    Object.fromEntries(Object.entries(candidate).filter(([, v]) => v !== undefined)),
  );

  const running = await startFakeUpstream({ ...faults, port, host });
  console.log(`fake-upstream listening on ${running.url}`);

  const shutdown = (): void => {
    running.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once("SIGINT", shutdown);
  process.once("SIGTERM", shutdown);
}

function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(entry)).href;
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main().catch((err: unknown) => {
    console.error(`fake-upstream: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(2);
  });
}
