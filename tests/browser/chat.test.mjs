// The chat example in a real browser: two tabs in one room see each other's messages.
//
//   BASE_URL=http://127.0.0.1:8080 node --test chat.test.mjs
//
// scripts/browser-test.sh starts the server and runs this. CHROMIUM_PATH overrides
// /usr/bin/chromium; BROWSER_TEST_TIMEOUT_MS bounds each test (default 30000).
import { after, before, beforeEach, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { BASE_URL, TEST_TIMEOUT_MS, WAIT_MS, closeChromium, launchChromium } from "./browser.mjs";

let browser;
let context;
// The current test's page errors and console errors, reported with any failure: they usually
// explain it.
let problems = [];
beforeEach(() => {
  problems = [];
});

before(async () => {
  browser = await launchChromium();
  context = await browser.newContext();
  context.setDefaultTimeout(WAIT_MS);
});

after(async () => {
  await closeChromium(browser);
});

function token() {
  return randomBytes(4).toString("hex");
}

async function openTab(label, room) {
  const page = await context.newPage();
  page.on("pageerror", (error) => problems.push(`${label}: page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`${label}: console: ${message.text()}`);
  });
  const url = `${BASE_URL}/rooms/${room}`;
  const response = await page.goto(url);
  assert.ok(response?.ok(), `${label}: GET ${url} answered ${response?.status()}`);
  return { label, page };
}

// What each tab shows now, and what went wrong in the browser, for a failure message.
async function describe(tabs) {
  const lines = [];
  for (const { label, page } of tabs) {
    const status = await page.locator("#status").textContent({ timeout: 1_000 }).catch(() => "?");
    const items = await page.locator("#messages li").allTextContents().catch(() => []);
    lines.push(`${label}: #status is ${JSON.stringify(status?.trim())}, messages ${JSON.stringify(items)}`);
  }
  if (problems.length) lines.push("browser problems:", ...problems.map((p) => `  ${p}`));
  return lines.map((line) => `\n  ${line}`).join("");
}

async function waitConnected(tab) {
  try {
    await tab.page.locator("#status").filter({ hasText: /^\s*connected\s*$/ }).waitFor();
  } catch {
    throw new Error(`${tab.label} never showed #status "connected" within ${WAIT_MS} ms${await describe([tab])}`);
  }
}

async function send({ page }, name, text) {
  await page.fill("#name", name);
  await page.fill("#text", text);
  await page.click("#composer [type=submit]");
}

// Waits for the message in the tab, then checks it arrived once and reads exactly "name: text".
// The failure message shows every tab of the test (the sender's view tells a lost send from
// a lost broadcast).
async function expectMessage(tab, line, tabs) {
  const items = tab.page.locator("#messages li").filter({ hasText: line });
  try {
    await items.first().waitFor();
  } catch {
    throw new Error(`${tab.label} never showed <li>${line}</li> within ${WAIT_MS} ms${await describe(tabs)}`);
  }
  const texts = (await items.allTextContents()).map((t) => t.trim());
  assert.deepEqual(texts, [line], `${tab.label} should show <li>${line}</li> exactly once${await describe(tabs)}`);
}

async function expectAbsent(tab, line, tabs) {
  const count = await tab.page.locator("#messages li").filter({ hasText: line }).count();
  assert.equal(count, 0, `${tab.label} is in another room but showed <li>${line}</li>${await describe(tabs)}`);
}

async function closeAll(tabs) {
  await Promise.all(tabs.map((tab) => tab.page.close().catch(() => {})));
}

test("GET / lands on the lobby", { timeout: TEST_TIMEOUT_MS }, async () => {
  const page = await context.newPage();
  try {
    await page.goto(`${BASE_URL}/`);
    assert.equal(new URL(page.url()).pathname, "/rooms/lobby", "GET / should redirect to /rooms/lobby");
  } finally {
    await page.close();
  }
});

test("two tabs in one room see each other's messages", { timeout: TEST_TIMEOUT_MS }, async () => {
  const room = `t-${token()}`;
  const tabs = [await openTab("tab 1", room), await openTab("tab 2", room)];
  try {
    await Promise.all(tabs.map(waitConnected));
    const [one, two] = tabs;

    const hello = `hello from one ${token()}`;
    await send(one, "alice", hello);
    await expectMessage(two, `alice: ${hello}`, tabs);
    await expectMessage(one, `alice: ${hello}`, tabs);

    const reply = `reply from two ${token()}`;
    await send(two, "bob", reply);
    await expectMessage(one, `bob: ${reply}`, tabs);
    await expectMessage(two, `bob: ${reply}`, tabs);
  } finally {
    await closeAll(tabs);
  }
});

// With two workers, each connection lands on either core; six tabs make it all but certain
// (31 in 32) that a message must cross cores, and a tab in another room must not see it.
test("a message reaches every tab in the room and no other room", { timeout: TEST_TIMEOUT_MS }, async () => {
  const room = `t-${token()}`;
  const tabs = [];
  for (let i = 1; i <= 6; i++) tabs.push(await openTab(`tab ${i}`, room));
  const outsider = await openTab("outsider tab", `t-${token()}`);
  try {
    await Promise.all([...tabs, outsider].map(waitConnected));
    const line = `fan-out ${token()}`;
    await send(tabs[5], "carol", line);
    for (const tab of tabs) await expectMessage(tab, `carol: ${line}`, [...tabs, outsider]);
    await expectAbsent(outsider, `carol: ${line}`, [...tabs, outsider]);
  } finally {
    await closeAll([...tabs, outsider]);
  }
});
