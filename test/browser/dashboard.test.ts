/**
 * The dashboard in a real browser: Debian's headless Chromium (apt-get install chromium-headless-shell;
 * .ci/run installs it) driven by playwright-core, against a local stack (wrangler dev + the book-API
 * stand-in) while a real job runs. The stand-in fails some authors on purpose, so failures and retries
 * appear; a few public reads give the cache chart data.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type OfflineStack, startOfflineStack } from "../../scripts/dev-offline.ts";
import { REPO_ROOT, timestampForFile } from "../../scripts/lib/processes.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium-headless-shell";
const FIXTURE = join(REPO_ROOT, "test/fixtures/goodreads-2025.csv");
const SHOTS = join(REPO_ROOT, ".wrangler", "browser");
/** KINDLING_SCREENSHOTS=docs also refreshes the README's screenshots in docs/. */
const DOC_SHOTS = process.env.KINDLING_SCREENSHOTS === "docs" ? join(REPO_ROOT, "docs") : null;

/** Fresh local state for each run, removed afterwards. */
const persistTo = join(REPO_ROOT, ".wrangler", `browser-${timestampForFile()}`);
let stack: OfflineStack;
let browser: Browser;
let jobId: string;
let failingJobId: string;
const consoleErrors: string[] = [];

async function shoot(page: Page, name: string) {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, name), fullPage: true });
  if (DOC_SHOTS) await page.screenshot({ path: join(DOC_SHOTS, name), fullPage: true });
}

async function newPage(): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("console", (m) => {
    if (m.type() === "error") consoleErrors.push(`${page.url()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => consoleErrors.push(`${page.url()}: ${e.message}`));
  return page;
}

/** Enters the token in the page's own form (as an operator would); it stays in sessionStorage. */
async function logIn(page: Page, path: string) {
  await page.goto(`${stack.url}${path}`);
  await page.locator("#login").waitFor({ state: "visible" });
  await page.fill("#token", stack.token);
  await page.click("#login button[type=submit]");
  await page.locator("#login").waitFor({ state: "hidden" });
}

/**
 * Pixels of each chart's canvas painted in one of its series' colours: proof a line was drawn. Runs in the
 * page (a string: this project's TypeScript has no DOM types).
 */
const PAINTED_PIXELS = `[...document.querySelectorAll("[data-chart]")].map((el) => {
  const canvas = el.querySelector("canvas");
  const colors = (el.dataset.colors || "").split(" ").map((hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)));
  let painted = 0;
  if (canvas) {
    const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 0; i < data.length; i += 4) {
      if (data[i + 3] > 200 && colors.some(([r, g, b]) => Math.abs(data[i] - r) + Math.abs(data[i + 1] - g) + Math.abs(data[i + 2] - b) < 24)) painted++;
    }
  }
  return { chart: el.dataset.chart, points: Number(el.dataset.points || 0), nonzero: Number(el.dataset.nonzero || 0), painted };
})`;

interface ChartState {
  chart: string;
  points: number;
  nonzero: number;
  painted: number;
}
const paintedPixels = (page: Page) => page.evaluate(PAINTED_PIXELS) as Promise<ChartState[]>;

const auth = () => ({ Authorization: `Bearer ${stack.token}` });

async function upload(csv: string, maxDepth: number): Promise<string> {
  const response = await fetch(`${stack.url}/api/jobs?maxDepth=${maxDepth}`, {
    method: "POST",
    headers: { ...auth(), "Content-Type": "text/csv" },
    body: csv,
  });
  expect(response.status).toBe(202);
  return ((await response.json()) as { jobId: string }).jobId;
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not true after ${timeoutMs} ms: ${check.toString()}`);
    await new Promise((r) => setTimeout(r, 1_000));
  }
}

const finishedOf = async (page: Page) => Number(((await page.textContent("#finished")) ?? "").split("/")[0]);

describe("dashboard in headless Chromium", () => {
  beforeAll(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(
        `${CHROMIUM} is missing: apt-get install -y chromium-headless-shell (or set CHROMIUM_PATH)`,
      );
    stack = await startOfflineStack({
      port: 0,
      upstreamPort: 0,
      persistTo,
      logName: "browser",
      // Slow enough that the big job is still running while its page is read.
      olRate: 4,
      gbRate: 4,
      sweepEverySeconds: 5,
      upstream: { latencyMs: 50, failingAuthors: ["Broken Writer"] },
      vars: { MAX_DELIVERIES: "2" },
      log: () => {},
    });
    // A small job with an author the stand-in always fails: it ends with a dead letter within seconds
    // (two deliveries, retries 1 s apart), before the big job fills the queue. It is alone in its job: with
    // two deliveries a neighbour sharing its grouped request would die with it (production allows four, and
    // splits the group on the third).
    failingJobId = await upload("Title,Author\nB,Broken Writer\n", 0);
    await waitFor(async () => {
      const r = await fetch(`${stack.url}/api/jobs/${failingJobId}/failures`, { headers: auth() });
      return ((await r.json()) as { failures: unknown[] }).failures.length > 0;
    }, 90_000);
    // The big job: ~490 authors at 4 requests/s, still running while the pages are read.
    jobId = await upload(readFileSync(FIXTURE, "utf8"), 1);
    // Public reads (miss, then hit) so the cache chart has something to draw.
    for (const name of ["Mary Beard", "Mary Beard", "Ursula K. Le Guin"])
      await (await fetch(`${stack.url}/api/authors/${encodeURIComponent(name)}/works`)).body?.cancel();
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
    rmSync(persistTo, { recursive: true, force: true });
  });

  it("refuses data without a token, in the API and in the page", async () => {
    expect((await fetch(`${stack.url}/api/analytics/overview`)).status).toBe(401);
    expect((await fetch(`${stack.url}/api/jobs/${jobId}`)).status).toBe(401);
    const page = await newPage();
    await page.goto(`${stack.url}/`);
    await page.locator("#login").waitFor({ state: "visible" });
    await page.fill("#token", "wrong-token");
    await page.click("#login button[type=submit]");
    await expect.poll(() => page.textContent("#login-error"), { timeout: 10_000 }).toContain("refused");
    await page.close();
    // The refused request is the page's one expected console error; nothing else may have logged.
    consoleErrors.splice(0, consoleErrors.length, ...consoleErrors.filter((e) => !e.includes("401")));
  });

  it("overview loads without console errors and every chart draws its data", async () => {
    const page = await newPage();
    await logIn(page, "/");
    let charts: ChartState[] = [];
    await expect
      .poll(
        async () => {
          charts = await paintedPixels(page);
          // Hourly charts have the day's 24 points; the per-provider chart the last hour's 60 minutes.
          return (
            charts.length === 5 &&
            charts.every(
              (c) => c.points === (c.chart === "providers" ? 60 : 24) && c.nonzero > 0 && c.painted > 20,
            )
          );
        },
        { timeout: 120_000, interval: 2_000 },
      )
      .toBe(true);
    expect(charts.map((c) => c.chart)).toEqual(["throughput", "failures", "upstream", "providers", "cache"]);
    expect(await page.textContent("#health")).toBe("ok");
    // The daily quotas from /health: one row per provider, used / limit / state / reset time.
    const quotas = await page.locator("#quotas tr").allTextContents();
    expect(quotas).toHaveLength(2);
    expect(quotas[0]).toMatch(/^openlibrary\d+(\d+|none)(available|exhausted)\S/);
    expect(quotas[1]).toMatch(/^googlebooks\d+(\d+|none)(available|exhausted)\S/);
    // The job's Open Library requests so far are among the quota's used.
    expect(
      Number((await page.locator("#quotas tr").first().locator("td").nth(1).textContent()) ?? 0),
    ).toBeGreaterThan(0);
    expect(await page.locator("#jobs tr a").first().textContent()).toBe(jobId.slice(0, 8));
    await shoot(page, "dashboard-overview.png");
    expect(consoleErrors).toEqual([]);
    await page.close();
  }, 150_000);

  it("job page: progress advances between two reads", async () => {
    const page = await newPage();
    await logIn(page, `/job?id=${jobId}`);
    await page.locator("#by-depth tr").first().waitFor();
    const first = await finishedOf(page);
    await expect.poll(() => finishedOf(page), { timeout: 60_000, interval: 1_000 }).toBeGreaterThan(first);
    expect(await page.textContent("#job-status")).toMatch(/^(queued|running)/);
    // Its stages (a Workflow instance runs the job) and its log tail, as the job's own routes give them.
    const stages = await page.locator("#stages tr td:first-child").allTextContents();
    expect(stages).toEqual(["ingest", "warm", "verify", "publish"]);
    expect(await page.locator("#stages tr").nth(0).locator("td").nth(1).textContent()).toBe("SUCCESS");
    expect(await page.locator("#stages tr").nth(1).locator("td").nth(1).textContent()).toBe("RUNNING");
    await expect.poll(() => page.textContent("#log"), { timeout: 15_000 }).toMatch(/\S/);
    // The page's lines are the job's own log lines (the route's NDJSON), the job's stage events among them.
    const shown = ((await page.textContent("#log")) ?? "").split("\n");
    const log = await (await fetch(`${stack.url}/api/jobs/${jobId}/log`, { headers: auth() })).text();
    for (const line of shown) expect(log).toContain(line);
    expect(shown.every((line) => typeof JSON.parse(line).at === "string")).toBe(true);
    // Cost: counted by the consumer while the job runs, priced at list prices.
    await expect.poll(() => page.locator("#cost-section").isVisible(), { timeout: 15_000 }).toBe(true);
    const queueOps = Number(await page.locator("#cost tr").first().locator("td").nth(1).textContent());
    expect(queueOps).toBeGreaterThan(0);
    expect(await page.textContent("#cost-total")).toMatch(/estimate \$|estimate < \$/);
    await shoot(page, "dashboard-job-running.png");
    expect(consoleErrors).toEqual([]);
    await page.close();
  }, 90_000);

  it("job page: the failing author appears in the failures table with its error", async () => {
    const page = await newPage();
    await logIn(page, `/job?id=${failingJobId}`);
    await expect
      .poll(() => page.locator("#failures tr td").first().textContent(), { timeout: 30_000 })
      .toBe("Broken Writer");
    const failure = (await page.locator("#failures tr").first().textContent()) ?? "";
    expect(failure).toMatch(/500/);
    // A finished job: every stage shown, its log tail, and its cost.
    await expect
      .poll(() => page.locator("#stages tr td:first-child").allTextContents(), { timeout: 30_000 })
      .toEqual(["ingest", "warm", "verify", "publish"]);
    await expect.poll(() => page.textContent("#log"), { timeout: 15_000 }).toMatch(/\S/);
    await expect.poll(() => page.locator("#cost-section").isVisible(), { timeout: 15_000 }).toBe(true);
    await shoot(page, "dashboard-job.png");
    expect(consoleErrors).toEqual([]);
    await page.close();
  }, 60_000);

  it("/docs renders the API reference from /openapi.json", async () => {
    const page = await newPage();
    await page.goto(`${stack.url}/docs`);
    await expect.poll(() => page.locator(".opblock").count(), { timeout: 30_000 }).toBeGreaterThan(15);
    expect(
      await page.locator(".opblock-summary-path", { hasText: "/api/analytics/throughput" }).count(),
    ).toBe(1);
    expect(consoleErrors).toEqual([]);
    await page.close();
  }, 60_000);

  it("cancel button stops the job", async () => {
    const page = await newPage();
    await logIn(page, `/job?id=${jobId}`);
    await page.locator("#by-depth tr").first().waitFor();
    const [answer] = await Promise.all([
      page.waitForResponse(
        (r) => r.url().endsWith(`/api/jobs/${jobId}/cancel`) && r.request().method() === "POST",
      ),
      page.click("#cancel"),
    ]);
    expect(answer.status()).toBe(200);
    await expect.poll(() => page.textContent("#job-status"), { timeout: 30_000 }).toMatch(/^cancelled/);
    await page.close();
  }, 60_000);
});
