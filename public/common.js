// Shared by the dashboard's pages: the token (kept in this tab's sessionStorage only, never a cookie or
// the URL), authorised JSON requests, and small DOM helpers. No framework, no CDN.
const TOKEN_KEY = "kindling.token";

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** Shows the token form; resolves once the operator has entered one. */
export function askForToken(message = "") {
  const form = document.getElementById("login");
  form.hidden = false;
  document.getElementById("login-error").textContent = message;
  return new Promise((resolve) => {
    form.onsubmit = (event) => {
      event.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value.trim());
      form.hidden = true;
      resolve();
    };
  });
}

export class Unauthorized extends Error {}

/** fetch with the bearer token; a 401 forgets the token and raises Unauthorized. */
export async function api(path, init = {}) {
  const headers = { ...(init.headers ?? {}) };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  const response = await fetch(path, { ...init, headers });
  if (response.status === 401 && !init.allow401) {
    sessionStorage.removeItem(TOKEN_KEY);
    throw new Unauthorized("that token was refused");
  }
  return response;
}

export async function apiJson(path, init) {
  const response = await api(path, init);
  if (!response.ok) throw new Error(`${path} answered ${response.status}`);
  return response.json();
}

/** Runs `refresh` now and every `everyMs`, asking for a token first and again whenever it is refused. */
export async function runPage(refresh, everyMs) {
  for (;;) {
    if (!token()) await askForToken();
    try {
      await refresh();
      break;
    } catch (error) {
      if (error instanceof Unauthorized) await askForToken(error.message);
      else {
        showMessage(`could not load: ${error.message}`, true);
        break;
      }
    }
  }
  setInterval(() => {
    refresh().catch((error) => {
      if (error instanceof Unauthorized) location.reload();
      else showMessage(`refresh failed: ${error.message}`, true);
    });
  }, everyMs);
}

export function showMessage(text, bad = false) {
  const el = document.getElementById("message");
  if (!el) return;
  el.textContent = text;
  el.className = bad ? "bad" : "muted";
}

/** A <tr> of text cells (textContent: job data never becomes markup). */
export function row(cells, numeric = []) {
  const tr = document.createElement("tr");
  cells.forEach((value, i) => {
    const td = document.createElement("td");
    if (value instanceof Node) td.append(value);
    else td.textContent = value === null || value === undefined ? "" : String(value);
    if (numeric.includes(i)) td.className = "num";
    tr.append(td);
  });
  return tr;
}

export function progressBar(percent) {
  const bar = document.createElement("span");
  bar.className = "bar";
  bar.title = `${percent}%`;
  const fill = document.createElement("span");
  fill.style.width = `${Math.max(0, Math.min(100, percent))}%`;
  bar.append(fill);
  return bar;
}

export function jobLink(job) {
  const a = document.createElement("a");
  a.href = `/job?id=${encodeURIComponent(job.jobId)}`;
  a.textContent = job.jobId.slice(0, 8);
  return a;
}

export const when = (iso) => (iso ? new Date(iso).toLocaleString() : "");

/** Fills a table body with rows, or one row saying there is nothing. */
export function fillBody(tbody, rows, empty, columns) {
  if (rows.length > 0) tbody.replaceChildren(...rows);
  else tbody.innerHTML = `<tr><td colspan="${columns}" class="muted">${empty}</td></tr>`;
}
