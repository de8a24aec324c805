import { api, apiJson, fillBody, row, runPage, showMessage, when } from "./common.js";

const $ = (id) => document.getElementById(id);
const jobId = new URLSearchParams(location.search).get("id") ?? "";
const STATES = ["pending", "queued", "running", "done", "skipped", "failed", "dead", "cancelled"];
/** Whether the log route exists on this deployment (#12 adds it): asked once. */
let logAvailable;

function renderProgress(job) {
  $("job-id").textContent = job.jobId;
  $("job-status").textContent =
    `${job.status} · ${job.format}${job.filename ? ` · ${job.filename}` : ""} · created ${when(job.createdAt)}`;
  $("percent").textContent = `${job.percent}%`;
  $("eta").textContent =
    job.etaSeconds === null ? "" : job.etaSeconds === 0 ? "nothing open" : `about ${job.etaSeconds} s left`;
  const c = job.counts;
  $("finished").textContent = `${c.done + c.skipped + c.failed + c.dead + (c.cancelled ?? 0)} / ${c.total}`;
  $("tasks-detail").textContent = `${c.pending} pending · ${c.queued} queued · ${c.running} running`;
  $("works").textContent = String(job.worksCached);
  $("dead").textContent = String(job.deadLetters);
  $("card-dead").classList.toggle("alert", job.deadLetters > 0);
  const depthRows = job.byDepth.map((d) =>
    row([d.depth, ...STATES.map((s) => d[s] ?? 0), d.total], [1, 2, 3, 4, 5, 6, 7, 8, 9]),
  );
  depthRows.push(row(["all", ...STATES.map((s) => c[s] ?? 0), c.total], [1, 2, 3, 4, 5, 6, 7, 8, 9]));
  fillBody($("by-depth"), depthRows, "no tasks", 10);
  // Sections that appear once the job JSON carries them (kinds: #11's ISBN items; stages: #12's workflows).
  if (job.byKind) {
    $("by-kind-section").hidden = false;
    const kinds = Array.isArray(job.byKind)
      ? job.byKind
      : Object.entries(job.byKind).map(([kind, v]) => ({ kind, ...v }));
    // Same columns as the depth table, plus the reader's books cached by ISBN (`warm`, ISBN items only).
    fillBody(
      $("by-kind"),
      kinds.map((k) =>
        row(
          [k.kind, ...STATES.map((s) => k[s] ?? 0), k.total, k.warm ?? ""],
          [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        ),
      ),
      "none",
      11,
    );
  }
  if (job.stages) {
    $("stages-section").hidden = false;
    const stages = Array.isArray(job.stages)
      ? job.stages
      : Object.entries(job.stages).map(([name, v]) => ({
          name,
          ...(typeof v === "object" ? v : { status: v }),
        }));
    fillBody(
      $("stages"),
      stages.map((s) => row([s.name ?? s.stage, s.status, stageDetail(s)])),
      "none",
      3,
    );
    $("manifest").textContent = job.manifest ? `Manifest: ${JSON.stringify(job.manifest)}` : "";
  }
  const finished = ["completed", "completed_with_errors", "cancelled", "failed"].includes(job.status);
  $("cancel").disabled = finished;
  $("pause").disabled = finished || job.status === "paused";
  $("resume").disabled = job.status !== "paused";
}

/** A stage's failure message, else its counts and how long it ran. */
function stageDetail(s) {
  if (s.message) return s.message;
  const counts = s.counts ? Object.entries(s.counts).map(([k, v]) => `${k} ${v}`) : [];
  if (s.startedAt) {
    const end = s.endedAt ? Date.parse(s.endedAt) : Date.now();
    counts.push(`${Math.round((end - Date.parse(s.startedAt)) / 100) / 10} s${s.endedAt ? "" : " so far"}`);
  }
  return counts.join(" · ");
}

const usd = (n) => (n === 0 ? "0" : n < 0.000001 ? "< $0.000001" : `$${n.toFixed(6)}`);

/** The job's billable operations (README, "Cost per job") and their estimate at list prices. */
function renderCost(cost) {
  if (!cost) return;
  $("cost-section").hidden = false;
  $("cost-total").textContent = `estimate ${usd(cost.estimateUsd.total)} at list prices`;
  const q = cost.queue;
  const rows = [
    row(
      [
        `queue operations (${q.sent} sent · ${q.delivered} delivered · ${q.retried} retried · ${q.acked} acked)`,
        cost.queueOperations,
        usd(cost.estimateUsd.queues),
      ],
      [1, 2],
    ),
    row(["KV reads", cost.kvReads, usd(cost.estimateUsd.kvReads)], [1, 2]),
    row(["KV writes", cost.kvWrites, usd(cost.estimateUsd.kvWrites)], [1, 2]),
    row(["D1 rows read", cost.d1RowsRead, usd(cost.estimateUsd.d1RowsRead)], [1, 2]),
    row(["D1 rows written", cost.d1RowsWritten, usd(cost.estimateUsd.d1RowsWritten)], [1, 2]),
    ...Object.entries(cost.upstreamRequests).map(([p, n]) => row([`${p} requests`, n, "—"], [1, 2])),
    row(["consumer invocations", cost.consumerInvocations, "—"], [1, 2]),
  ];
  fillBody($("cost"), rows, "nothing counted yet", 3);
}

async function renderFailures() {
  const { failures } = await apiJson(`/api/jobs/${jobId}/failures?limit=100`);
  const rows = failures.map((f) =>
    row([f.author, f.status, f.depth, f.attempts, f.error, when(f.updatedAt)], [2, 3]),
  );
  fillBody($("failures"), rows, "no failures", 6);
}

/**
 * The log tail, where the deployment has one: its URL comes from the job JSON (links.log), or, for jobs
 * run as workflows (they carry `stages`), the conventional /api/jobs/:id/log. Never probed blindly: a
 * 404 would show as an error in the browser's console.
 */
async function renderLog(job) {
  const path = job.links?.log ?? (job.stages ? `/api/jobs/${jobId}/log` : null);
  if (!path || logAvailable === false) return;
  const response = await api(path, { allow401: true });
  logAvailable = response.ok;
  if (!response.ok) return;
  $("log-section").hidden = false;
  const text = await response.text();
  $("log").textContent = text.trimEnd().split("\n").slice(-50).join("\n");
}

async function refresh() {
  const job = await apiJson(`/api/jobs/${jobId}`);
  renderProgress(job);
  renderCost(job.cost);
  await Promise.all([renderFailures(), renderLog(job)]);
  showMessage(`updated ${new Date().toLocaleTimeString()}`);
}

/** The control buttons POST to the job's routes; each answer is shown as it comes (404: not on this deployment). */
async function act(action) {
  const out = $("action-result");
  out.textContent = `${action}…`;
  const response = await api(`/api/jobs/${jobId}/${action}`, { method: "POST", allow401: true });
  const body = await response.json().catch(() => ({}));
  if (response.ok) out.textContent = `${action}: ${body.status ?? "accepted"}`;
  else if (response.status === 404) out.textContent = `${action} is not available on this deployment`;
  else if (response.status === 401) out.textContent = `${action} needs the admin token (API_TOKEN)`;
  else out.textContent = `${action}: ${response.status} ${body.error?.message ?? ""}`;
  out.className = response.ok ? "ok" : "bad";
  await refresh().catch(() => {});
}

for (const button of document.querySelectorAll("button[data-action]")) {
  button.addEventListener("click", () => act(button.dataset.action));
}

if (!/^[0-9a-f-]{36}$/i.test(jobId)) showMessage("no job id in the address (/job?id=…)", true);
else runPage(refresh, 3000);
