/**
 * Targets, the terminal table, bench/results.json and docs/BENCHMARKS.md.
 */
import type { MachineInfo } from "./harness.ts";
import {
  type CostFigures,
  costFigures,
  type IngestResult,
  type PolitenessResult,
  type PolitenessRun,
  type ProgressResult,
  type Sizes,
  type WarmResult,
} from "./scenarios.ts";

export type ScenarioName = "ingest" | "warm" | "politeness" | "cost" | "progress";
export const SCENARIOS: readonly ScenarioName[] = ["ingest", "warm", "politeness", "cost", "progress"];

export interface ScenarioOutcome<T> {
  status: "ok" | "timed out" | "error" | "not run";
  seconds: number;
  error?: string;
  result?: T;
}

export interface BenchResults {
  generatedAt: string;
  command: string;
  quick: boolean;
  only: ScenarioName[];
  sizes: Sizes;
  machine: MachineInfo;
  /** Processes of other people's runs seen on the machine while a side started (tests, dev servers). */
  overlap: { scenario: string; loadAverage1m: number; otherProcesses: string[] }[];
  totalSeconds: number;
  scenarios: {
    ingest: ScenarioOutcome<IngestResult>;
    warm: ScenarioOutcome<WarmResult>;
    politeness: ScenarioOutcome<PolitenessResult>;
    cost: ScenarioOutcome<{ kindling: CostFigures; naive?: CostFigures }>;
    progress: ScenarioOutcome<ProgressResult>;
  };
  targets: Target[];
}

export interface Target {
  id: string;
  scenario: ScenarioName;
  what: string;
  target: string;
  /** The measured figure (null when not measured). */
  value: number | null;
  display: string;
  /** null: not measured (scenario not run, timed out or failed). */
  met: boolean | null;
  /** Why it was missed (plain words, from the numbers and the code). */
  why?: string;
}

const fmt = (n: number, digits = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : "n/a";

export const verdict = (met: boolean | null) => (met === null ? "NOT MEASURED" : met ? "MET" : "MISSED");

// ---------------------------------------------------------------------------------------------------------
// Targets
// ---------------------------------------------------------------------------------------------------------

function politenessTargets(run: PolitenessRun): Target[] {
  const r = run.rate;
  const label = r === 3 ? "R = 3/s (production Open Library default)" : `R = ${r}/s`;
  const achieved: Target = {
    id: `politeness.r${r}.achieved`,
    scenario: "politeness",
    what: `${label}: achieved rate / R`,
    target: "≥ 0.95",
    value: run.achievedRatio,
    display: `${fmt(run.achievedRatio, 3)} (${fmt(run.achievedPerSecond, 2)}/s)`,
    met: Number.isFinite(run.achievedRatio) ? run.achievedRatio >= 0.95 : null,
  };
  if (achieved.met === false) {
    achieved.why =
      `The limiter itself never waits longer than it must (grants are ${Math.ceil(1000 / r)} ms apart), but ` +
      "locally miniflare delivers one consumer batch (≤ 10 messages) at a time and only asks for the next " +
      "batch when the previous invocation has returned. Each batch's requests take their slots, then the " +
      "invocation records its outcomes (KV writes, one or two D1 batches, markers) while no request is in " +
      `flight: those gaps are the missing ${fmt((1 - run.achievedRatio) * 100, 1)} %. In production, ` +
      "several consumer invocations run concurrently and keep the slots booked; this local figure is a " +
      "lower bound.";
  }
  const max: Target = {
    id: `politeness.r${r}.max_window`,
    scenario: "politeness",
    what: `${label}: most requests in any 1-second window (sliding, per-request timestamps)`,
    target: `≤ ${r}`,
    value: run.maxInAnyOneSecondWindow,
    display: `${run.maxInAnyOneSecondWindow} (calendar-second max ${run.maxPerCalendarSecond})`,
    met: run.requests > 0 ? run.maxInAnyOneSecondWindow <= r : null,
  };
  if (max.met === false) {
    max.why =
      `The Durable Object hands out slots exactly ${Math.ceil(1000 / r)} ms apart, so no 1-second window ` +
      `holds more than ${r} grants; requests arrive at the stand-in a little after their slot (the ` +
      "consumer sleeps until the slot, then fetches), and that delay varies, so a late request and an " +
      `on-time one a second later can land in the same 1-second window (${run.maxInAnyOneSecondWindow}). ` +
      `Counted the way the stand-in limits (calendar seconds) the maximum was ${run.maxPerCalendarSecond}.`;
  }
  const r429: Target = {
    id: `politeness.r${r}.429s`,
    scenario: "politeness",
    what: `${label}: 429 answers received`,
    target: "0",
    value: run.responses429,
    display: fmt(run.responses429),
    met: run.requests > 0 ? run.responses429 === 0 : null,
  };
  if (r429.met === false) {
    r429.why =
      "The stand-in counts requests per calendar second; when arrival jitter put more than R requests " +
      `into one calendar second (max ${run.maxPerCalendarSecond}), the extra ones were answered 429.`;
  }
  return [achieved, max, r429];
}

export function computeTargets(results: BenchResults): Target[] {
  const targets: Target[] = [];
  const s = results.scenarios;

  const ingest = s.ingest.result?.kindling;
  const t202: Target = {
    id: "ingest.time_to_202",
    scenario: "ingest",
    what: `Upload ${fmt(results.sizes.ingestRows)} rows / ${fmt(results.sizes.ingestAuthors)} authors: wall time to 202`,
    target: "≤ 3 s",
    value: ingest?.secondsTo202 ?? null,
    display: ingest ? `${fmt(ingest.secondsTo202, 2)} s` : "—",
    met: ingest ? ingest.secondsTo202 <= 3 : null,
  };
  if (t202.met === false) {
    t202.why =
      "The whole upload is done before the answer: read and parse the CSV (papaparse, row by row), hash " +
      "it, one D1 batch inserting the job and every task, one sendBatch per 100 authors, one D1 batch " +
      "marking them queued. Locally every binding is a Durable Object/SQLite file in the same workerd " +
      "process on a 2-core machine, and the 202 waits for all of it.";
  }
  targets.push(t202);
  const perCall = ingest?.authorsPerSendBatchCall ?? null;
  targets.push({
    id: "ingest.authors_per_send_batch",
    scenario: "ingest",
    what: "Authors per sendBatch call (at most one call per 100 authors)",
    target: "≥ 100",
    value: perCall,
    display: ingest
      ? `${fmt(perCall ?? Number.NaN, 1)} (${fmt(ingest.counters.queueSendBatchCalls)} calls)`
      : "—",
    met: ingest && perCall !== null ? perCall >= 100 : ingest ? false : null,
  });

  const warm = s.warm.result;
  const ratio =
    warm?.naive && warm.naive.authorsPerSecond > 0
      ? warm.kindling.authorsPerSecond / warm.naive.authorsPerSecond
      : null;
  const speed: Target = {
    id: "warm.speedup",
    scenario: "warm",
    what: `Warm ${fmt(results.sizes.warmAuthors)} authors (maxDepth 2, 50 ms stand-in): Kindling ÷ naive authors/s`,
    target: "≥ 5×",
    value: ratio === null ? null : Math.round(ratio * 100) / 100,
    display: ratio === null ? "—" : `${fmt(ratio, 2)}×`,
    met: ratio === null ? null : ratio >= 5,
  };
  if (speed.met === false && warm?.naive) {
    speed.why =
      "Both consumers share the same local bottlenecks: miniflare delivers one batch of ≤ 10 messages at " +
      "a time to the single local isolate (so Kindling's parallelism is capped at 10 authors in flight), " +
      "and the local KV simulator serialises writes (~1.4 ms each, measured), which both sides pay per " +
      `key. Kindling ran ${fmt(warm.kindling.authorsPerSecond, 1)} authors/s against the naive ` +
      `${fmt(warm.naive.authorsPerSecond, 1)} authors/s.`;
  }
  targets.push(speed);

  const cost = s.cost.result?.kindling;
  const kvPerWork: Target = {
    id: "cost.kv_writes_per_work",
    scenario: "cost",
    what: "KV writes per new work",
    target: "≤ 2",
    value: cost?.perWork.kvWrites ?? null,
    display: cost ? fmt(cost.perWork.kvWrites, 2) : "—",
    met: cost ? cost.perWork.kvWrites <= 2 : null,
  };
  if (kvPerWork.met === false && cost) {
    kvPerWork.why =
      "Per work the consumer writes the ISBN key (when the work has an ISBN) and the title key, and per " +
      "author the author's work list and the processed marker; those two per-author writes are spread " +
      "over the author's works.";
  }
  targets.push(kvPerWork);
  const d1PerBatch: Target = {
    id: "cost.d1_batches_per_message_batch",
    scenario: "cost",
    what: "D1 batches per consumer message batch (happy path)",
    target: "≤ 1",
    value: cost?.d1BatchesPerMessageBatch ?? null,
    display: cost ? fmt(cost.d1BatchesPerMessageBatch, 2) : "—",
    met: cost ? cost.d1BatchesPerMessageBatch <= 1 : null,
  };
  if (d1PerBatch.met === false && cost) {
    d1PerBatch.why =
      "By design the consumer (src/warm/consumer.ts) does one D1 batch to claim the message batch " +
      "(mark the job running + move the tasks to running, so a redelivered message is recognised before " +
      "any upstream call), one to record every outcome (works, task states, child tasks, job completion, " +
      "the warm event), and one more to mark co-author tasks queued whenever new ones were sent. That is " +
      `2 per batch at best and 3 with fan-out: ${fmt(cost.d1BatchesPerMessageBatch, 2)} measured ` +
      `(${fmt(cost.totals.d1Batches)} batches for ${fmt(cost.messageBatches)} message batches, the upload's own ` +
      "2 batches included). Meeting ≤ 1 would need the claim folded into the outcome batch, giving up the " +
      "check that skips redelivered messages before they cost upstream requests.";
  }
  targets.push(d1PerBatch);

  const politeness = s.politeness.result;
  if (politeness) for (const run of politeness.runs) targets.push(...politenessTargets(run));
  for (const rate of [20, 3]) {
    if (!politeness?.runs.some((r) => r.rate === rate)) {
      targets.push({
        id: `politeness.r${rate}`,
        scenario: "politeness",
        what: `R = ${rate}/s politeness`,
        target: "≥ 0.95 R, never above R, zero 429s",
        value: null,
        display: "—",
        met: null,
      });
    }
  }

  const progress = s.progress.result;
  const p95: Target = {
    id: "progress.p95",
    scenario: "progress",
    what: `GET /api/jobs/:id on a ${fmt(results.sizes.progressTasks)}-task job: p95 latency`,
    target: "≤ 50 ms",
    value: progress?.p95Ms ?? null,
    display: progress ? `${fmt(progress.p95Ms, 1)} ms` : "—",
    met: progress ? progress.p95Ms <= 50 : null,
  };
  if (p95.met === false && progress) {
    p95.why =
      "Progress is counted from the task table on every read (SELECT depth, status, COUNT(*) … GROUP BY), " +
      `so each read scans the job's ${fmt(progress.tasks)} index entries (tasks_by_status covers it, but a ` +
      "count over 100,000 rows is still linear), plus the local D1 round trip through workerd.";
  }
  targets.push(p95);
  return targets;
}

export function costOutcome(warm: WarmResult): { kindling: CostFigures; naive?: CostFigures } {
  return { kindling: costFigures(warm.kindling), ...(warm.naive ? { naive: costFigures(warm.naive) } : {}) };
}

// ---------------------------------------------------------------------------------------------------------
// Terminal table
// ---------------------------------------------------------------------------------------------------------

type Row = [string, string, string, string, string, string];

function rows(results: BenchResults): Row[] {
  const out: Row[] = [];
  const s = results.scenarios;
  const targetOf = (id: string) => results.targets.find((t) => t.id === id);
  const res = (id: string) => verdict(targetOf(id)?.met ?? null);
  const status = (name: ScenarioName, o: ScenarioOutcome<unknown>) => {
    if (o.status !== "ok" && o.status !== "not run") {
      out.push([
        name,
        o.status.toUpperCase(),
        (o.error ?? "").split("\n")[0]?.slice(0, 70) ?? "",
        "",
        "",
        "",
      ]);
    }
  };

  status("ingest", s.ingest);
  const ig = s.ingest.result;
  if (ig) {
    const k = ig.kindling;
    const n = ig.naive;
    out.push([
      "ingest",
      "wall time to 202",
      `${fmt(k.secondsTo202, 2)} s`,
      n ? `${fmt(n.secondsTo202, 2)} s` : "—",
      "≤ 3 s",
      res("ingest.time_to_202"),
    ]);
    out.push(["", "rows/s", fmt(k.rowsPerSecond), n ? fmt(n.rowsPerSecond) : "—", "", ""]);
    out.push([
      "",
      "sendBatch calls",
      fmt(k.counters.queueSendBatchCalls),
      n ? fmt(n.counters.queueSendBatchCalls) : "—",
      "",
      "",
    ]);
    out.push([
      "",
      "send calls",
      fmt(k.counters.queueSendCalls),
      n ? fmt(n.counters.queueSendCalls) : "—",
      "",
      "",
    ]);
    out.push([
      "",
      "authors per sendBatch call",
      fmt(k.authorsPerSendBatchCall ?? Number.NaN, 1),
      n ? fmt(n.authorsPerSendBatchCall ?? Number.NaN, 1) : "—",
      "≥ 100",
      res("ingest.authors_per_send_batch"),
    ]);
    out.push([
      "",
      "D1 batches / statements (producer)",
      `${k.producerD1Batches} / ${fmt(k.producerD1Statements)}`,
      n ? `${n.producerD1Batches} / ${fmt(n.producerD1Statements)}` : "—",
      "",
      "",
    ]);
  }

  status("warm", s.warm);
  const w = s.warm.result;
  if (w) {
    const k = w.kindling;
    const n = w.naive;
    out.push(["warm", "tasks (incl. fan-out)", fmt(k.counts.total), n ? fmt(n.counts.total) : "—", "", ""]);
    out.push(["", "seconds upload → completed", fmt(k.seconds, 1), n ? fmt(n.seconds, 1) : "—", "", ""]);
    out.push(["", "authors/s", fmt(k.authorsPerSecond, 1), n ? fmt(n.authorsPerSecond, 1) : "—", "", ""]);
    const sp = targetOf("warm.speedup");
    out.push(["", "speed-up (Kindling ÷ naive)", sp?.display ?? "—", "", "≥ 5×", res("warm.speedup")]);
  }

  status("politeness", s.politeness);
  const p = s.politeness.result;
  if (p) {
    for (const run of p.runs) {
      const id = `politeness.r${run.rate}`;
      out.push([
        `polite R=${run.rate}`,
        "achieved / R",
        `${fmt(run.achievedRatio, 3)} (${fmt(run.achievedPerSecond, 2)}/s)`,
        "",
        "≥ 0.95",
        res(`${id}.achieved`),
      ]);
      out.push([
        "",
        "max in any 1 s (sliding)",
        fmt(run.maxInAnyOneSecondWindow),
        `calendar s: ${run.maxPerCalendarSecond}`,
        `≤ ${run.rate}`,
        res(`${id}.max_window`),
      ]);
      out.push(["", "429s", fmt(run.responses429), "", "0", res(`${id}.429s`)]);
    }
  }

  status("cost", s.cost);
  const c = s.cost.result;
  if (c) {
    const k = c.kindling;
    const n = c.naive;
    const two = (v: number | undefined) => (v === undefined ? "—" : fmt(v, 2));
    out.push([
      "cost",
      "queue messages / author",
      two(k.perAuthor.queueMessages),
      two(n?.perAuthor.queueMessages),
      "",
      "",
    ]);
    out.push(["", "queue calls / author", two(k.perAuthor.queueCalls), two(n?.perAuthor.queueCalls), "", ""]);
    out.push(["", "KV reads / author", two(k.perAuthor.kvReads), two(n?.perAuthor.kvReads), "", ""]);
    out.push(["", "KV writes / author", two(k.perAuthor.kvWrites), two(n?.perAuthor.kvWrites), "", ""]);
    out.push([
      "",
      "KV writes / work",
      two(k.perWork.kvWrites),
      two(n?.perWork.kvWrites),
      "≤ 2",
      res("cost.kv_writes_per_work"),
    ]);
    out.push([
      "",
      "D1 statements / author",
      two(k.perAuthor.d1Statements),
      two(n?.perAuthor.d1Statements),
      "",
      "",
    ]);
    out.push([
      "",
      "D1 rows written / author",
      two(k.perAuthor.d1RowsWritten),
      two(n?.perAuthor.d1RowsWritten),
      "",
      "",
    ]);
    out.push([
      "",
      "D1 batches / message batch",
      two(k.d1BatchesPerMessageBatch),
      two(n?.d1BatchesPerMessageBatch),
      "≤ 1",
      res("cost.d1_batches_per_message_batch"),
    ]);
    out.push([
      "",
      "subrequests / author",
      two(k.perAuthor.subrequests),
      two(n?.perAuthor.subrequests),
      "",
      "",
    ]);
  }

  status("progress", s.progress);
  const pr = s.progress.result;
  if (pr) {
    out.push(["progress", `p50 (${fmt(pr.tasks)} tasks)`, `${fmt(pr.p50Ms, 1)} ms`, "", "", ""]);
    out.push(["", "p95", `${fmt(pr.p95Ms, 1)} ms`, "", "≤ 50 ms", res("progress.p95")]);
    out.push(["", "max", `${fmt(pr.maxMs, 1)} ms`, "", "", ""]);
  }
  return out;
}

export function formatTable(results: BenchResults): string {
  const header: Row = ["scenario", "metric", "Kindling", "naive / other", "target", "result"];
  const body = rows(results);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]?.length ?? 0)));
  const line = (r: Row) =>
    r
      .map((cell, i) => (i >= 2 && i <= 3 ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(header), widths.map((w) => "─".repeat(w)).join("  "), ...body.map(line)].join("\n");
}
