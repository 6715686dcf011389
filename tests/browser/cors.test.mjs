// CORS in a real browser: pages of other origins call examples/service, whose policy allows
// one origin, CORS_ALLOWED_ORIGIN (its SERVICE_CORS_ORIGIN; default http://localhost:3000):
// GET and POST, the content-type and x-request-id headers, x-request-id exposed. Chromium
// makes the preflights and enforces the answers. Each origin's page comes from a small
// server started here on loopback (a page the browser thinks public could not call a
// loopback service at all: Private Network Access).
//
//   BASE_URL=http://127.0.0.1:8080 CORS_ALLOWED_ORIGIN=http://localhost:3000 node --test cors.test.mjs
//
// scripts/browser-test.sh starts the service and runs this.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { BASE_URL, TEST_TIMEOUT_MS, WAIT_MS, closeChromium, launchChromium } from "./browser.mjs";

const ALLOWED = (process.env.CORS_ALLOWED_ORIGIN ?? "http://localhost:3000").replace(/\/+$/, "");
let OTHER;

let browser;
let context;
const pageServers = [];

// Serves a blank page on 127.0.0.1:`port` (0: any free port); resolves to the port.
function servePages(port) {
  const server = createServer((_request, response) => {
    response.writeHead(200, { "content-type": "text/html" });
    response.end("<!doctype html><title>another origin</title>");
  });
  pageServers.push(server);
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve(server.address().port));
  });
}

before(async () => {
  await servePages(Number(new URL(ALLOWED).port || 80));
  OTHER = `http://localhost:${await servePages(0)}`;
  browser = await launchChromium();
  context = await browser.newContext();
  context.setDefaultTimeout(WAIT_MS);
});

after(async () => {
  await closeChromium(browser);
  for (const server of pageServers) server.close();
});

async function pageAt(origin) {
  const page = await context.newPage();
  await page.goto(`${origin}/`);
  return page;
}

// Runs fetch(url, init) in the page: the status, a JSON body and the x-request-id header the
// page can read, or the error when the browser blocked the call.
function fetchFrom(page, url, init = {}) {
  return page.evaluate(
    async ([url, init]) => {
      try {
        const response = await fetch(url, init);
        const text = await response.text();
        return { status: response.status, text, requestId: response.headers.get("x-request-id") };
      } catch (error) {
        return { blocked: String(error) };
      }
    },
    [url, init],
  );
}

test("the allowed origin reads a simple GET and the exposed header", { timeout: TEST_TIMEOUT_MS }, async () => {
  const page = await pageAt(ALLOWED);
  const result = await fetchFrom(page, `${BASE_URL}/api/greeting?name=cors`);
  assert.equal(result.blocked, undefined);
  assert.equal(result.status, 200);
  assert.equal(JSON.parse(result.text).greeting, "Hello, cors!");
  assert.match(result.requestId ?? "", /^[\x21-\x7e]{1,128}$/, "x-request-id is exposed");
  await page.close();
});

test("the allowed origin passes the preflight for an allowed header and method", { timeout: TEST_TIMEOUT_MS }, async () => {
  const page = await pageAt(ALLOWED);
  // A JSON content type and a custom header make Chromium ask first (OPTIONS).
  const withHeader = await fetchFrom(page, `${BASE_URL}/api/greeting?name=preflight`, {
    headers: { "x-request-id": "from-the-page" },
  });
  assert.equal(withHeader.blocked, undefined);
  assert.equal(withHeader.status, 200);
  const post = await fetchFrom(page, `${BASE_URL}/api/greeting`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{}",
  });
  // The preflight allowed POST; the route itself answers only GET, and the browser lets the
  // page read that answer because it carries the CORS headers too.
  assert.equal(post.blocked, undefined);
  assert.equal(post.status, 405);
  await page.close();
});

test("the allowed origin is refused a header and a method the policy does not list", { timeout: TEST_TIMEOUT_MS }, async () => {
  const page = await pageAt(ALLOWED);
  const header = await fetchFrom(page, `${BASE_URL}/api/greeting`, { headers: { "x-secret": "1" } });
  assert.match(header.blocked ?? "", /TypeError/, JSON.stringify(header));
  const method = await fetchFrom(page, `${BASE_URL}/api/greeting`, { method: "PUT" });
  assert.match(method.blocked ?? "", /TypeError/, JSON.stringify(method));
  await page.close();
});

test("another origin cannot read even a simple GET", { timeout: TEST_TIMEOUT_MS }, async () => {
  const page = await pageAt(OTHER);
  const result = await fetchFrom(page, `${BASE_URL}/api/greeting`);
  assert.match(result.blocked ?? "", /TypeError/, JSON.stringify(result));
  await page.close();
});
