import { apiJson, fillBody, jobLink, progressBar, row, runPage, showMessage, when } from "./common.js";

async function refresh() {
  const { jobs } = await apiJson("/api/jobs?limit=100");
  const rows = jobs.map((j) =>
    row(
      [
        jobLink(j),
        j.status,
        j.kind ?? "upload",
        j.filename ?? j.format,
        progressBar(j.tasks ? Math.floor((j.finished / j.tasks) * 100) : 0),
        j.tasks,
        j.failed,
        j.worksCached,
        when(j.createdAt),
        when(j.completedAt),
      ],
      [5, 6, 7],
    ),
  );
  fillBody(document.getElementById("jobs"), rows, "no jobs yet", 10);
  showMessage(`updated ${new Date().toLocaleTimeString()}`);
}

runPage(refresh, 5000);
