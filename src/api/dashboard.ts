/** The operator's page: recent jobs and their progress, read from the JSON API every few seconds. */
export function dashboardPage(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Kindling</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 2rem; color: #222; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #ddd; }
  .bar { background: #eee; width: 160px; height: 10px; border-radius: 5px; overflow: hidden; }
  .bar > span { display: block; height: 100%; background: #e8590c; }
  .muted { color: #777; }
</style>
</head>
<body>
<h1>Kindling</h1>
<p class="muted">Cache-warming jobs, newest first. <span id="health"></span></p>
<form id="login" hidden>
  <label>Token (API_TOKEN or READ_TOKEN): <input id="token" type="password" autocomplete="off" size="40"></label>
  <button>Show jobs</button> <span id="login-error" class="muted"></span>
</form>
<table>
  <thead><tr><th>Job</th><th>Status</th><th>Progress</th><th>Tasks</th><th>Failed</th><th>Works cached</th><th>Created</th></tr></thead>
  <tbody id="jobs"><tr><td colspan="7" class="muted">loading…</td></tr></tbody>
</table>
<script>
// Job data needs a token; it lives in this tab's session storage only, never in a cookie or the URL.
const TOKEN_KEY = "kindling.token";
const login = document.getElementById("login");
login.addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value.trim());
  refresh();
});
function askForToken(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  login.hidden = false;
  document.getElementById("login-error").textContent = message;
}
async function refresh() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) return askForToken("");
  const [jobsResponse, health] = await Promise.all([
    fetch("/api/jobs?limit=25", { headers: { Authorization: "Bearer " + token } }),
    fetch("/health").then((r) => r.json()).catch(() => null),
  ]);
  if (jobsResponse.status === 401) return askForToken("that token was refused");
  login.hidden = true;
  const jobs = await jobsResponse.json();
  document.getElementById("health").textContent = health
    ? "Health: " + health.status + " · dead letters: " + health.deadLetters.count
    : "Health: unreachable";
  const rows = jobs.jobs.map((j) => {
    const pct = j.tasks ? Math.floor((j.finished / j.tasks) * 100) : 0;
    const tr = document.createElement("tr");
    const cells = [j.jobId.slice(0, 8), j.status, "", j.tasks, j.failed, j.worksCached, new Date(j.createdAt).toLocaleString()];
    cells.forEach((value, i) => {
      const td = document.createElement("td");
      if (i === 2) {
        td.innerHTML = '<div class="bar"><span></span></div>';
        td.querySelector("span").style.width = pct + "%";
        td.title = pct + "%";
      } else td.textContent = String(value);
      tr.appendChild(td);
    });
    return tr;
  });
  const body = document.getElementById("jobs");
  body.replaceChildren(...rows);
  if (rows.length === 0) body.innerHTML = '<tr><td colspan="7" class="muted">no jobs yet</td></tr>';
}
refresh();
setInterval(refresh, 3000);
</script>
</body>
</html>`;
}
