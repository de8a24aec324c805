/**
 * Measures how much memory workerd takes to read one upload, per upload shape.
 *
 *   npm run upload-memory [-- --mib 50 --only csv,multipart,json --json]
 *
 * Starts the offline stack (wrangler dev --local, fake upstream, fresh temporary state), then for each shape
 * (text/csv, multipart/form-data, JSON base64) posts a file just under UPLOAD_MAX_BYTES and one 1 MiB over it
 * (sent chunked, without Content-Length, so only the bytes read can refuse it), polling the workerd
 * processes' VmRSS (summed) from /proc every few milliseconds, each case on a fresh stack. It prints, per case, the HTTP status, workerd's RSS
 * before, its peak during the request, peak minus before, and RSS 2 s after. The CSV has 20 distinct
 * authors and is uploaded with maxDepth 0, so the warm that follows is cheap. Linux only (/proc).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startOfflineStack } from "./dev-offline.ts";
import { errorMessage, isEntryPoint, shutdownAndExit } from "./lib/processes.ts";

const MIB = 1024 * 1024;
const SAMPLE_EVERY_MS = 5;
const SETTLE_MS = 2000;
type Shape = "csv" | "multipart" | "json";
const SHAPES: Shape[] = ["csv", "multipart", "json"];

interface Measurement {
  shape: Shape;
  size: "limit" | "over";
  fileBytes: number;
  status: number;
  code: string | null;
  beforeMb: number;
  peakMb: number;
  deltaMb: number;
  afterMb: number;
  /** Peak minus before for each workerd process on its own (the app's isolate and miniflare's local R2/D1/KV
   * services run in different ones, so the split shows what the worker holds vs what local storage holds). */
  perProcessDeltaMb: number[];
}

/** VmRSS of a process in MB (10^6 bytes), or null when it is gone. */
function rssMb(pid: number): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
    return kb === undefined ? null : (Number(kb) * 1024) / 1e6;
  } catch {
    return null;
  }
}

/** The workerd processes wrangler started: those named workerd in wrangler's process group. */
function findWorkerd(groupLeader: number): number[] {
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // Fields after the parenthesised command name: state ppid pgrp ...
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const pgrp = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
      if (comm === "workerd" && pgrp === groupLeader) found.push(Number(entry));
    } catch {
      // the process went away while we looked
    }
  }
  if (found.length === 0) throw new Error(`no workerd process in process group ${groupLeader}`);
  return found;
}

/** Total VmRSS of the workerd processes, in MB. */
function totalRssMb(pids: number[]): number {
  return pids.reduce((sum, pid) => sum + (rssMb(pid) ?? 0), 0);
}

/** A CSV of `bytes` bytes: long rows (few rows, under UPLOAD_MAX_ROWS) by 20 distinct authors. */
function makeCsv(bytes: number): Uint8Array {
  const header = "Title,Author\n";
  const rows: string[] = [header];
  let size = header.length;
  for (let i = 0; ; i++) {
    const row = `"Book ${i} ${"x".repeat(300)}",Author Number ${i % 20}\n`;
    // Whole rows only (a cut row would be an unclosed quote): the file ends up to one row under `bytes`.
    if (size + row.length > bytes) break;
    rows.push(row);
    size += row.length;
  }
  return new TextEncoder().encode(rows.join(""));
}

/** The request body for one shape; `chunked` streams it (no Content-Length). */
function makeRequest(
  shape: Shape,
  csv: Uint8Array,
  chunked: boolean,
): { body: BodyInit; headers: Record<string, string> } {
  let payload: Uint8Array;
  let contentType: string;
  if (shape === "csv") {
    payload = csv;
    contentType = "text/csv";
  } else if (shape === "json") {
    const text = `{"csv":"${Buffer.from(csv).toString("base64")}","maxDepth":0,"priority":"normal","filename":"big.csv"}`;
    payload = new TextEncoder().encode(text);
    contentType = "application/json";
  } else {
    const boundary = "----kindling-memory-boundary";
    const head = new TextEncoder().encode(
      `--${boundary}\r\nContent-Disposition: form-data; name="maxDepth"\r\n\r\n0\r\n` +
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\nContent-Type: text/csv\r\n\r\n`,
    );
    const tail = new TextEncoder().encode(`\r\n--${boundary}--\r\n`);
    payload = new Uint8Array(head.byteLength + csv.byteLength + tail.byteLength);
    payload.set(head, 0);
    payload.set(csv, head.byteLength);
    payload.set(tail, head.byteLength + csv.byteLength);
    contentType = `multipart/form-data; boundary=${boundary}`;
  }
  if (!chunked) return { body: payload as Uint8Array<ArrayBuffer>, headers: { "Content-Type": contentType } };
  let offset = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= payload.byteLength) return controller.close();
      controller.enqueue(payload.subarray(offset, offset + 256 * 1024));
      offset += 256 * 1024;
    },
  });
  return { body: stream, headers: { "Content-Type": contentType } };
}

/** Posts one upload while polling workerd's RSS; returns the figures. */
async function measure(
  url: string,
  token: string,
  pids: number[],
  shape: Shape,
  size: "limit" | "over",
  csv: Uint8Array,
): Promise<Measurement> {
  const query = shape === "csv" ? "?maxDepth=0&filename=big.csv" : "";
  const { body, headers } = makeRequest(shape, csv, size === "over");
  const beforeMb = totalRssMb(pids);
  const beforeEach = pids.map((pid) => rssMb(pid) ?? 0);
  const peakEach = [...beforeEach];
  let peakMb = beforeMb;
  const sample = () => {
    pids.forEach((pid, i) => {
      peakEach[i] = Math.max(peakEach[i] ?? 0, rssMb(pid) ?? 0);
    });
    peakMb = Math.max(peakMb, totalRssMb(pids));
  };
  const timer = setInterval(sample, SAMPLE_EVERY_MS);
  let status = 0;
  let code: string | null = null;
  try {
    const response = await fetch(`${url}/api/jobs${query}`, {
      method: "POST",
      headers: { ...headers, Authorization: `Bearer ${token}` },
      body,
      duplex: "half",
    } as RequestInit);
    status = response.status;
    const answer = (await response.json().catch(() => null)) as { error?: { code?: string } } | null;
    code = answer?.error?.code ?? null;
  } catch (error) {
    code = `fetch failed: ${errorMessage(error)}`;
  }
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  clearInterval(timer);
  sample();
  const afterMb = totalRssMb(pids);
  return {
    shape,
    size,
    fileBytes: csv.byteLength,
    status,
    code,
    beforeMb,
    peakMb,
    deltaMb: peakMb - beforeMb,
    afterMb,
    perProcessDeltaMb: peakEach.map((peak, i) => Math.round(peak - (beforeEach[i] ?? 0))),
  };
}

/** Each case gets its own stack and state, so what one upload leaves behind does not count in the next. */
async function measureOnFreshStack(
  limit: number,
  shape: Shape,
  size: "limit" | "over",
  csv: Uint8Array,
): Promise<Measurement> {
  const persistTo = mkdtempSync(join(tmpdir(), "kindling-upload-memory-"));
  const stack = await startOfflineStack({
    port: 0,
    upstreamPort: 0,
    persistTo,
    sweepEverySeconds: 0,
    logName: "upload-memory",
    vars: { UPLOAD_MAX_BYTES: String(limit) },
  });
  try {
    const pids = findWorkerd(stack.wrangler.pid);
    // Let the fresh isolate settle (the health check just ran) before taking the baseline.
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    return await measure(stack.url, stack.token, pids, shape, size, csv);
  } finally {
    await stack.stop();
    rmSync(persistTo, { recursive: true, force: true });
  }
}

function table(rows: Measurement[]): string {
  const f = (n: number) => n.toFixed(0);
  const lines = [
    "| shape | file | status | RSS before (MB) | peak (MB) | peak − before (MB) | per process (MB) | 2 s after (MB) |",
    "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const r of rows) {
    const file = `${(r.fileBytes / MIB).toFixed(2)} MiB${r.size === "over" ? " (chunked)" : ""}`;
    const status = `${r.status}${r.code ? ` ${r.code}` : ""}`;
    lines.push(
      `| ${r.shape} | ${file} | ${status} | ${f(r.beforeMb)} | ${f(r.peakMb)} | ${f(r.deltaMb)} | ${r.perProcessDeltaMb.map((d) => `+${d}`).join(" / ")} | ${f(r.afterMb)} |`,
    );
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { mib: { type: "string" }, only: { type: "string" }, json: { type: "boolean" } },
  });
  const limit = Math.round(Number(values.mib ?? "50") * MIB);
  const shapes = values.only ? (values.only.split(",") as Shape[]) : SHAPES;
  const atLimit = makeCsv(limit - 1024);
  const over = makeCsv(limit + MIB + 1024);
  const rows: Measurement[] = [];
  for (const shape of shapes) {
    for (const [size, csv] of [
      ["limit", atLimit],
      ["over", over],
    ] as const) {
      rows.push(await measureOnFreshStack(limit, shape, size, csv));
      process.stderr.write(`${JSON.stringify(rows.at(-1))}\n`);
    }
  }
  process.stdout.write(values.json ? `${JSON.stringify(rows, null, 2)}\n` : `${table(rows)}\n`);
}

if (isEntryPoint(import.meta.url)) {
  main().then(
    () => shutdownAndExit(0),
    async (error: unknown) => {
      process.stderr.write(`upload-memory: ${errorMessage(error)}\n`);
      await shutdownAndExit(1);
    },
  );
}
