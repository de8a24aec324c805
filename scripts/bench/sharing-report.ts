/**
 * The sharing scenarios' targets, terminal lines and BENCHMARKS.md section (scripts/bench/sharing.ts runs
 * them and writes bench/sharing.json).
 */
import {
  LATENCY_MS,
  type Measured,
  type Politeness,
  RATE,
  SHARING_TARGETS,
  type SharingResult,
  WORKS_PER_AUTHOR,
} from "./sharing.ts";

interface Check {
  ok: boolean;
  text: string;
}

function politeChecks(label: string, p: Politeness): Check[] {
  return [
    {
      ok: p.maxInAnyOneSecond <= RATE,
      text: `${label}: most requests in any 1 s ${p.maxInAnyOneSecond} ≤ R = ${RATE}`,
    },
    { ok: p.responses429 === 0, text: `${label}: ${p.responses429} × 429` },
  ];
}

export function sharingChecks(r: SharingResult): Check[] {
  const t = SHARING_TARGETS;
  const out: Check[] = [];
  if (r.priority) {
    const p = r.priority;
    out.push({
      ok: p.ratio <= t.priorityRatio,
      text: `priority: small job ${p.withBig.small.secondsToComplete} s beside the big one vs ${p.standalone.secondsToComplete} s alone = ${p.ratio}× ≤ ${t.priorityRatio}×`,
    });
    out.push(...politeChecks("priority (alone)", p.politeness.standalone));
    out.push(...politeChecks("priority (with big)", p.politeness.withBig));
  }
  if (r.fairness) {
    const f = r.fairness;
    out.push({
      ok: f.secondStartSeconds !== null && f.secondStartSeconds <= t.secondStartSeconds,
      text: `fairness: second job's first request ${f.secondStartSeconds ?? "never"} s after its upload ≤ ${t.secondStartSeconds} s`,
    });
    const [a, b] = f.window.shares;
    out.push({
      ok: [a, b].every((s) => s >= t.shareMin && s <= t.shareMax),
      text: `fairness: shares while both ran ${(a * 100).toFixed(1)} % / ${(b * 100).toFixed(1)} % within 40–60 %`,
    });
    out.push(...politeChecks("fairness", f.politeness));
  }
  if (r.backpressure) {
    const b = r.backpressure.refused;
    out.push({
      ok: b.status === 429 && b.code === "backlog_full" && b.retryAfter !== null,
      text: `backpressure: ${b.status} ${b.code ?? "—"} with Retry-After ${b.retryAfter ?? "none"}`,
    });
    out.push({
      ok: b.msToResponse <= r.backpressure.accepted.msToResponse,
      text: `backpressure: refused in ${b.msToResponse} ms ≤ the accepted upload's ${r.backpressure.accepted.msToResponse} ms`,
    });
    out.push({
      ok: b.jobsBefore === b.jobsAfter && b.r2FilesBefore === b.r2FilesAfter,
      text: `backpressure: nothing written (jobs ${b.jobsBefore}→${b.jobsAfter}, R2 files ${b.r2FilesBefore}→${b.r2FilesAfter})`,
    });
    out.push({
      ok: r.backpressure.high.status === 202,
      text: `backpressure: a high upload within the bypass answered ${r.backpressure.high.status}`,
    });
    out.push(...politeChecks("backpressure", r.backpressure.politeness));
  }
  return out;
}

export function formatSharing(r: SharingResult): string {
  const lines = [
    `sharing the upstream (Open Library ${RATE}/s enforced by the stand-in, ${LATENCY_MS} ms, maxDepth 0)`,
  ];
  for (const c of sharingChecks(r)) lines.push(`  ${c.ok ? "met   " : "MISSED"} ${c.text}`);
  for (const e of r.errors) lines.push(`  ERROR ${e}`);
  return lines.join("\n");
}

/** The scenario's own measurement stamp (absent in files written before it existed). */
const stamp = (m: Measured | undefined) =>
  m
    ? `\nMeasured ${m.at.slice(0, 16).replace("T", " ")} UTC${m.commit ? ` at ${m.commit}` : ""}${m.quick ? " (--quick sizes)" : ""}.\n`
    : "";

/** What a politeness miss looked like in the run (the limiter is not this scenario's code). */
function politenessFindings(r: SharingResult): string | null {
  const runs: [string, Politeness][] = [];
  if (r.priority) {
    runs.push(["priority (alone)", r.priority.politeness.standalone]);
    runs.push(["priority (with big)", r.priority.politeness.withBig]);
  }
  if (r.fairness) runs.push(["fairness", r.fairness.politeness]);
  if (r.backpressure) runs.push(["backpressure", r.backpressure.politeness]);
  const above = runs.filter(([, p]) => p.maxInAnyOneSecond > RATE || p.responses429 > 0);
  if (above.length === 0) return null;
  return `### Politeness

${above.map(([name, p]) => `- **${name}: above R**: ${p.maxInAnyOneSecond} requests within one sliding second at R = ${RATE} (of ${p.requests}), ${p.responses429} × 429 from the stand-in.`).join("\n")}

Two requests less than 1 s apart at R = ${RATE}: the limiter (the provider's Durable Object) spaces grants
ceil(1025/R) ms apart and allows 25 ms between a grant and the request's arrival, so a request that
arrives late followed by one on time can land two within a second, the pattern seen in production
politeness above. Not investigated further here: the scheduler is issue #13 item 2's (helper B), and
these scenarios will show whether its changes keep it.
`;
}

/** The BENCHMARKS.md section for the three scenarios. */
export function renderSharingMarkdown(r: SharingResult | undefined): string {
  const head = "## 7. Sharing the upstream: priority, fairness, backpressure\n";
  if (!r || (!r.priority && !r.fairness && !r.backpressure)) {
    return `${head}\nNot measured yet (\`npm run bench -- --only priority,fairness,backpressure\`).\n`;
  }
  const lines = [
    head,
    `Each job's authors are a disjoint synthetic set, so every Open Library request the stand-in sees is
attributed to the job(s) it names (a grouped query naming several jobs' authors is split by how many it
names of each). Open Library at ${RATE}/s, enforced by the stand-in with 429s; ${LATENCY_MS} ms latency;
Google Books off; maxDepth 0; ${WORKS_PER_AUTHOR} works per author. Measured ${r.generatedAt.slice(0, 10)}${r.commit ? ` at ${r.commit}` : ""}
(\`bench/sharing.json\`).${r.note ? `\n\n${r.note}` : ""}
`,
  ];
  if (r.priority) {
    const p = r.priority;
    lines.push(`### priority
${stamp(p.measured)}
| | time to completed | first request after upload | Open Library requests |
|---|---|---|---|
| 20-author \`high\` job alone | ${p.standalone.secondsToComplete} s | ${p.standalone.secondsToFirstRequest ?? "—"} s | ${p.standalone.requests} |
| 20-author \`high\` job, 5 s after the big one | ${p.withBig.small.secondsToComplete} s | ${p.withBig.small.secondsToFirstRequest ?? "—"} s | ${p.withBig.small.requests} |
| ${p.withBig.big.authors}-author \`normal\` job | ${p.withBig.big.secondsToComplete} s | ${p.withBig.big.secondsToFirstRequest ?? "—"} s | ${p.withBig.big.requests} |

Small job beside the big one ÷ alone: **${p.ratio}×** (target ≤ ${SHARING_TARGETS.priorityRatio}×).
`);
  }
  if (r.fairness) {
    const f = r.fairness;
    lines.push(`### fairness
${stamp(f.measured)}
| | time to completed | first request after upload | Open Library requests |
|---|---|---|---|
${f.jobs.map((j, i) => `| job ${i + 1} (${j.authors} authors, uploaded ${i === 0 ? "first" : "2 s later"}) | ${j.secondsToComplete} s | ${j.secondsToFirstRequest ?? "—"} s | ${j.requests} |`).join("\n")}

While both ran (the second upload until the first job finished, ${f.window.seconds} s, ${f.window.requests}
requests): job 1 **${(f.window.shares[0] * 100).toFixed(1)} %**, job 2 **${(f.window.shares[1] * 100).toFixed(1)} %**
(target 40–60 % each; the second job's first request within ${SHARING_TARGETS.secondStartSeconds} s of its upload).
`);
  }
  if (r.backpressure) {
    const b = r.backpressure;
    lines.push(`### backpressure
${stamp(b.measured)}
\`BACKLOG_LIMIT_SECONDS=${b.limitSeconds}\`, \`BACKLOG_HIGH_BYPASS_SECONDS=${b.highBypassSeconds}\`. A ${b.accepted.authors}-author job
(accepted in ${b.accepted.msToResponse} ms) fills the backlog; a second upload of the same size answered
**${b.refused.status} \`${b.refused.code}\`** in ${b.refused.msToResponse} ms with \`Retry-After: ${b.refused.retryAfter}\` and
\`details\` ${"`"}${JSON.stringify(b.refused.details)}${"`"}. Jobs listed ${b.refused.jobsBefore} → ${b.refused.jobsAfter};
files in the local R2 store ${b.refused.r2FilesBefore} → ${b.refused.r2FilesAfter}. The same upload at \`high\`: ${b.high.status}.
`);
  }
  const findings = politenessFindings(r);
  if (findings) lines.push(findings);
  lines.push(
    `### Targets\n\n${sharingChecks(r)
      .map((c) => `- ${c.ok ? "met" : "**missed**"}: ${c.text}`)
      .join("\n")}\n${r.errors.length ? `\nErrors: ${r.errors.join("; ")}\n` : ""}`,
  );
  return lines.join("\n");
}
