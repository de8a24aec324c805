/**
 * Profiles the upload path: starts an offline stack (as the benchmarks do: consumers held), attaches to the
 * worker's DevTools inspector, records a CPU profile of one upload of the generated Goodreads-shaped export
 * and prints where the worker's CPU time went (self time per function, and per source file).
 *
 *   node scripts/profile-upload.ts [--rows 100000] [--authors 60000] [--top 25]
 *
 * Workers freeze Date.now() while code runs, so the upload's own timing log shows only time spent waiting
 * for I/O; the profile shows the rest.
 */

import { parseArgs } from "node:util";
import { generateLibraryExport } from "./bench/csv.ts";
import { info, withStack } from "./bench/harness.ts";
import { HELD_CONSUMERS } from "./bench/scenarios.ts";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** A minimal Chrome DevTools Protocol client over the inspector's WebSocket. */
async function devtools(port: number) {
  const targets = (await (await fetch(`http://127.0.0.1:${port}/json`)).json()) as {
    webSocketDebuggerUrl: string;
  }[];
  const url = targets[0]?.webSocketDebuggerUrl;
  if (!url) throw new Error(`no inspector target on port ${port}: ${JSON.stringify(targets)}`);
  // wrangler's inspector proxy wants an Origin it knows (undici's WebSocket takes headers as an extension).
  const socket = new WebSocket(url, { headers: { Origin: "http://localhost" } } as unknown as string[]);
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = reject;
  });
  let next = 1;
  const waiting = new Map<number, (result: unknown) => void>();
  socket.onmessage = (event) => {
    const message = JSON.parse(String(event.data)) as { id?: number; result?: unknown; error?: unknown };
    if (message.id !== undefined) waiting.get(message.id)?.(message.error ?? message.result);
  };
  return {
    send<T>(method: string, params: Record<string, unknown> = {}): Promise<T> {
      const id = next++;
      socket.send(JSON.stringify({ id, method, params }));
      return new Promise((resolve) => waiting.set(id, resolve as (r: unknown) => void));
    },
    close: () => socket.close(),
  };
}

/** Self time per function and per file, in ms, from the sampled profile. */
function selfTimes(profile: Profile) {
  const byNode = new Map<number, number>();
  profile.samples.forEach((node, i) => {
    byNode.set(node, (byNode.get(node) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  });
  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  for (const node of profile.nodes) {
    const ms = byNode.get(node.id) ?? 0;
    if (ms === 0) continue;
    const file = node.callFrame.url.split("/").slice(-2).join("/") || "(native)";
    const name = `${node.callFrame.functionName || "(anonymous)"} ${file}:${node.callFrame.lineNumber + 1}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + ms);
    byFile.set(file, (byFile.get(file) ?? 0) + ms);
  }
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]);
  return { functions: sorted(byFunction), files: sorted(byFile) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { rows: { type: "string" }, authors: { type: "string" }, top: { type: "string" } },
  });
  const rows = Number(values.rows ?? 100_000);
  const authors = Number(values.authors ?? 60_000);
  const top = Number(values.top ?? 25);
  const { csv } = generateLibraryExport({ rows, distinctAuthors: authors });
  const signal = new AbortController().signal;
  await withStack(
    // As the ingest benchmark: consumers held, so the profile is the upload's.
    { name: "profile-upload", ...HELD_CONSUMERS },
    signal,
    async (stack) => {
      const tools = await devtools(stack.inspectorPort);
      await tools.send("Profiler.enable");
      await tools.send("Profiler.setSamplingInterval", { interval: 200 });
      await tools.send("Profiler.start");
      const upload = await stack.api.upload(csv, 0, signal, 300_000);
      const { profile } = await tools.send<{ profile: Profile }>("Profiler.stop");
      tools.close();
      const sampled = profile.timeDeltas.reduce((a, b) => a + b, 0) / 1000;
      const idle = selfTimes(profile).functions.find(([name]) => name.startsWith("(idle)"))?.[1] ?? 0;
      info(
        `upload of ${rows.toLocaleString("en-US")} rows: 202 after ${(upload.msToResponse / 1000).toFixed(2)} s; ` +
          `profile ${(sampled / 1000).toFixed(2)} s, of which idle ${(idle / 1000).toFixed(2)} s`,
      );
      const { functions, files } = selfTimes(profile);
      process.stdout.write("\nself time by file (ms)\n");
      for (const [file, ms] of files.slice(0, top))
        process.stdout.write(`${ms.toFixed(0).padStart(8)}  ${file}\n`);
      process.stdout.write("\nself time by function (ms)\n");
      for (const [name, ms] of functions.slice(0, top))
        process.stdout.write(`${ms.toFixed(0).padStart(8)}  ${name}\n`);
    },
  );
}

await main();
