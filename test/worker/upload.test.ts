import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { createApp } from "../../src/api/app";
import { resetAll } from "../support/db";
import { call, TOKEN } from "../support/http";

/** Upload bodies that the older, buffering reader accepted or mishandled: strict options, streaming limits. */

interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

const small = "Title,Author\nA Book,Ada Writer\nAnother,Bea Writer\n";
const encoder = new TextEncoder();
const auth = { Authorization: `Bearer ${TOKEN}` };

function base64(text: string): string {
  let binary = "";
  for (const b of encoder.encode(text)) binary += String.fromCharCode(b);
  return btoa(binary);
}

async function expectError(response: Response, status: number, code: string): Promise<ErrorBody> {
  const body = (await response.json()) as ErrorBody;
  expect({ status: response.status, code: body.error?.code }).toEqual({ status, code });
  return body;
}

function postJson(body: string, path = "/api/jobs"): Promise<Response> {
  return call(path, { method: "POST", headers: { ...auth, "Content-Type": "application/json" }, body });
}

function postForm(form: FormData, query = ""): Promise<Response> {
  return call(`/api/jobs${query}`, { method: "POST", headers: auth, body: form });
}

/** A body that sends `chunks`, then either errors (as a dropped client does) or never ends. */
function streamThen(chunks: () => Iterator<Uint8Array>, then: "error" | "stall"): ReadableStream<Uint8Array> {
  const source = chunks();
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const next = source.next();
      if (!next.done) return controller.enqueue(next.value);
      // A moment later, as a dropped connection would: an error at once can be folded into the first read.
      if (then === "error")
        return new Promise<void>((r) => setTimeout(r, 20)).then(() =>
          controller.error(new Error("client went away")),
        );
      return new Promise<void>(() => {}); // stalls: only a reader that stops early can answer
    },
  });
}

function post(contentType: string, body: ReadableStream<Uint8Array>, query = ""): Promise<Response> {
  return call(`/api/jobs${query}`, {
    method: "POST",
    headers: { ...auth, "Content-Type": contentType },
    body,
    duplex: "half",
  } as RequestInit);
}

/** Fails the test instead of hanging when the worker waits for a body that never ends. */
function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)),
  ]);
}

async function jobCount(): Promise<number> {
  return (await env.DB.prepare("SELECT COUNT(*) AS n FROM jobs").first<{ n: number }>())?.n ?? -1;
}

const BOUNDARY = "kindling-test-boundary";
const MULTIPART = `multipart/form-data; boundary=${BOUNDARY}`;

describe("upload bodies that break off", () => {
  beforeEach(resetAll);

  const shapes: [string, string, string][] = [
    ["text/csv", "text/csv", "Title,Author\nA Book,Ada"],
    [
      "multipart",
      MULTIPART,
      `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\nTitle,`,
    ],
    ["JSON", "application/json", `{"csv":"${base64("Title,Author\n")}`],
  ];
  for (const [name, contentType, first] of shapes) {
    it(`answers 400 upload_interrupted when a ${name} body errors mid-way, and creates no job`, async () => {
      // Straight into the app: across the runtime's fetch a broken body arrives as a cut-short one instead.
      const body = streamThen(() => [encoder.encode(first)][Symbol.iterator](), "error");
      const request = new Request("http://kindling.test/api/jobs", {
        method: "POST",
        headers: { ...auth, "Content-Type": contentType },
        body,
        duplex: "half",
      } as RequestInit);
      const error = await expectError(await createApp().fetch(request, env), 400, "upload_interrupted");
      expect(JSON.stringify(error).length).toBeLessThan(1000);
      expect(await jobCount()).toBe(0);
    });
  }
});

describe("bounded memory: refused as soon as the file passes the limit", () => {
  beforeEach(resetAll);
  const limit = Number(env.UPLOAD_MAX_BYTES);

  it("refuses a JSON upload once the decoded csv passes the limit, without waiting for the body's end", async () => {
    // "QXV0aG9yLFgK" is "Author,X\n" and each "QSwK" a row "A,\n": limit + 3 KiB of file, then the body
    // stalls. Base64 of that is still under the body-size cap (4/3 limit + 64 KiB), so only a reader that
    // decodes as it goes can refuse it.
    const chunk = encoder.encode("QSwK".repeat(16 * 1024));
    const quads = Math.ceil((limit + 3 * 1024) / 3);
    function* chunks() {
      yield encoder.encode('{"maxDepth":0,"csv":"QXV0aG9yLFgK');
      for (let sent = 0; sent < quads; sent += 16 * 1024) yield chunk;
    }
    const response = await within(15_000, post("application/json", streamThen(chunks, "stall")));
    const body = await expectError(response, 413, "payload_too_large");
    expect(body.error.details?.limitBytes).toBe(limit);
    expect(await jobCount()).toBe(0);
  });

  it("refuses a multipart file part once it passes the limit, without waiting for the body's end", async () => {
    // limit + 1 KiB of file, then the body stalls: under the body-size cap (limit + 64 KiB), so only a
    // reader that holds the part itself to the limit can refuse it.
    const line = encoder.encode(`${"x".repeat(1023)}\n`);
    function* chunks() {
      yield encoder.encode(
        `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n\r\nTitle,Author\n`,
      );
      const block = new Uint8Array(line.byteLength * 64);
      for (let i = 0; i < 64; i++) block.set(line, i * line.byteLength);
      let sent = 0;
      for (; sent + block.byteLength <= limit; sent += block.byteLength) yield block;
      for (; sent <= limit + 1024; sent += line.byteLength) yield line;
    }
    const response = await within(15_000, post(MULTIPART, streamThen(chunks, "stall")));
    await expectError(response, 413, "payload_too_large");
    expect(await jobCount()).toBe(0);
  });

  it("refuses a declared Content-Length over the limit before reading (JSON and multipart)", async () => {
    for (const [contentType, declared] of [
      ["application/json", Math.ceil((limit * 4) / 3) + 70 * 1024],
      [MULTIPART, limit + 70 * 1024],
    ] as const) {
      const response = await call("/api/jobs", {
        method: "POST",
        headers: { ...auth, "Content-Type": contentType, "Content-Length": String(declared) },
        body: streamThen(() => [][Symbol.iterator](), "stall"),
        duplex: "half",
      } as RequestInit);
      await expectError(response, 413, "payload_too_large");
    }
  });
});

describe("strict upload options", () => {
  beforeEach(resetAll);

  it("refuses maxDepth values the old coercion accepted, in the query", async () => {
    for (const value of ["", "%202", "0x3", "1.5", "1e0", "-0", "+1", "4"]) {
      const response = await call(`/api/jobs?maxDepth=${value}`, {
        method: "POST",
        headers: { ...auth, "Content-Type": "text/csv" },
        body: small,
      });
      const body = await expectError(response, 400, "invalid_option");
      expect(body.error.details?.field).toBe("maxDepth");
    }
    expect(await jobCount()).toBe(0);
  });

  it("refuses non-number maxDepth and non-enum priority in JSON with invalid_option", async () => {
    const csv = base64(small);
    for (const maxDepth of ['""', "null", "false", "true", "[]", "[1]", '"2"', '"0x3"', "1.5", "-1", "{}"]) {
      const response = await postJson(`{"csv":"${csv}","maxDepth":${maxDepth}}`);
      const body = await expectError(response, 400, "invalid_option");
      expect(body.error.details?.field).toBe("maxDepth");
    }
    for (const priority of ['"urgent"', "null", "1", '"HIGH"']) {
      await expectError(await postJson(`{"csv":"${csv}","priority":${priority}}`), 400, "invalid_option");
      await expectError(
        await postJson(`{"csv":"${csv}","priority":${priority}}`, "/api/warming/upload"),
        400,
        "invalid_option",
      );
    }
    expect(await jobCount()).toBe(0);
  });

  it("refuses a multipart maxDepth with spaces or a sign", async () => {
    for (const value of [" 2", "2 ", "", "+2", "three"]) {
      const form = new FormData();
      form.set("file", new File([small], "a.csv", { type: "text/csv" }));
      form.set("maxDepth", value);
      await expectError(await postForm(form), 400, "invalid_option");
    }
  });

  it("still takes every documented option form", async () => {
    const query = await call("/api/jobs?maxDepth=3&priority=low", {
      method: "POST",
      headers: { ...auth, "Content-Type": "text/csv" },
      body: small,
    });
    expect(await query.json()).toMatchObject({ maxDepth: 3, priority: "low" });
    const json = await postJson(`{"csv":"${base64(`${small}C,Cy\n`)}","maxDepth":0,"priority":"high"}`);
    expect(await json.json()).toMatchObject({ maxDepth: 0, priority: "high" });
    const form = new FormData();
    form.set("file", new File([`${small}D,Di\n`], "a.csv", { type: "text/csv" }));
    form.set("maxDepth", "1");
    form.set("priority", "normal");
    expect(await (await postForm(form)).json()).toMatchObject({ maxDepth: 1, priority: "normal" });
  });

  it("keeps invalid_request for a missing or non-string csv", async () => {
    await expectError(await postJson('{"maxDepth":1}'), 400, "invalid_request");
    await expectError(await postJson('{"csv":5}'), 400, "invalid_request");
    await expectError(await postJson('{"csv":""}'), 400, "invalid_request");
    await expectError(await postJson(`{"csv":"${base64(small)}"`), 400, "invalid_json");
    await expectError(await postJson(`{"csv":"${base64(small)}"} x`), 400, "invalid_json");
    await expectError(await postJson('{"csv":"a!b="}'), 400, "invalid_base64");
  });
});

describe("multipart parts", () => {
  beforeEach(resetAll);

  it("refuses a second file part with 400 multiple_files and creates no job", async () => {
    const form = new FormData();
    form.append("file", new File([small], "one.csv", { type: "text/csv" }));
    form.append("file", new File(["Title,Author\nX,Other Writer\n"], "two.csv", { type: "text/csv" }));
    await expectError(await postForm(form), 400, "multiple_files");
    expect(await jobCount()).toBe(0);
  });

  it("caps the list of fields found in a missing_file error", async () => {
    const form = new FormData();
    for (let i = 0; i < 14; i++) form.append(`${"f".repeat(500)}${i}`, "value");
    const body = await expectError(await postForm(form), 400, "missing_file");
    const found = body.error.details?.fieldsFound as string[];
    expect(found.length).toBeLessThanOrEqual(10);
    for (const name of found) expect(name.length).toBeLessThanOrEqual(64);
    expect(JSON.stringify(body).length).toBeLessThan(2000);
  });

  it("refuses more parts than an upload needs", async () => {
    const form = new FormData();
    form.set("file", new File([small], "a.csv", { type: "text/csv" }));
    for (let i = 0; i < 100; i++) form.append(`field${i}`, "x");
    await expectError(await postForm(form), 400, "too_many_parts");
  });

  it("caps an unsupported Content-Type echoed in the message", async () => {
    const response = await call("/api/jobs", {
      method: "POST",
      headers: { ...auth, "Content-Type": `application/${"x".repeat(5000)}` },
      body: small,
    });
    const body = await expectError(response, 415, "unsupported_media_type");
    expect(JSON.stringify(body).length).toBeLessThan(1000);
  });
});

describe("a refused upload's body", () => {
  beforeEach(resetAll);

  it("is read off before the answer (up to 1 MiB), so a client still sending sees the 4xx", async () => {
    const line = encoder.encode("A Book,Ada Writer\n".repeat(1000));
    let pulled = 0;
    const total = 20; // 340 KB
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (pulled >= total) return controller.close();
        pulled++;
        controller.enqueue(line);
      },
    });
    const response = await post("text/csv", body, "?maxDepth=9");
    expect(response.status).toBe(400);
    expect(((await response.json()) as ErrorBody).error.code).toBe("invalid_option");
    expect(pulled).toBe(total);
  });

  it("is cut off once it passes what is worth reading, and a stalled one does not hold the answer", async () => {
    const chunk = encoder.encode("x".repeat(64 * 1024));
    let pulled = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        controller.enqueue(chunk);
      },
    });
    expect((await within(10_000, post("text/csv", endless, "?maxDepth=9"))).status).toBe(400);
    expect(pulled).toBeLessThan(40); // ≤ 1 MiB read off, then cancelled
    function* once() {
      yield encoder.encode("Title,Author\n");
    }
    const started = Date.now();
    expect((await within(10_000, post("text/csv", streamThen(once, "stall"), "?maxDepth=9"))).status).toBe(
      400,
    );
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
