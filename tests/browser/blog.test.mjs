// The blog example in a real browser: sign up, write a post, see it listed, switch to
// Spanish, log out and log in again.
//
//   BASE_URL=http://127.0.0.1:8080 node --test blog.test.mjs
//
// scripts/browser-test.sh starts the server and runs this. CHROMIUM_PATH overrides
// /usr/bin/chromium; BROWSER_TEST_TIMEOUT_MS bounds each test (default 30000).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { BASE_URL, TEST_TIMEOUT_MS, WAIT_MS, closeChromium, launchChromium } from "./browser.mjs";

let browser;
before(async () => {
  browser = await launchChromium();
});

after(async () => {
  await closeChromium(browser);
});

// A page whose script errors, console errors and failed responses (4xx/5xx) fail the test.
async function openPage(context, problems) {
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console: ${message.text()}`);
  });
  page.on("response", (response) => {
    if (response.status() >= 400) problems.push(`${response.status()} for ${response.url()}`);
  });
  return page;
}

test("sign up, write a post, see it listed, switch language, log in again", { timeout: TEST_TIMEOUT_MS }, async () => {
  const problems = [];
  // English first, whatever the machine's locale.
  const context = await browser.newContext({ locale: "en-US" });
  const page = await openPage(context, problems);
  const name = `reader_${randomBytes(4).toString("hex")}`;
  const password = "a long password";
  const title = `Thunder over the bay ${randomBytes(3).toString("hex")}`;
  try {
    await page.goto(`${BASE_URL}/`);
    assert.equal(await page.getAttribute("html", "lang"), "en");
    // The stylesheet came from /static/ with a content hash and applied.
    const css = await page.getAttribute('link[rel="stylesheet"]', "href");
    assert.match(css, /^\/static\/blog\.css\?v=/);
    assert.equal(await page.$eval("body", (b) => getComputedStyle(b).margin), "0px");

    await page.click("#nav-signup");
    await page.fill("#name", name);
    await page.fill("#password", password);
    await page.fill("#password_confirm", password);
    await Promise.all([page.waitForURL(`${BASE_URL}/`), page.click("#account-submit")]);
    assert.match(await page.textContent("header"), new RegExp(`Welcome back, ${name}!`));

    await page.click("#nav-write");
    await page.fill("#title", title);
    await page.fill("#body", "The sky went dark at noon.\n\nThen the rain came.");
    // blog.js counts characters as they are typed.
    assert.equal((await page.textContent(".counter")).trim(), "47");
    await Promise.all([page.waitForURL(`${BASE_URL}/`), page.click("#publish")]);
    const post = page.locator("article.post", { hasText: title });
    await post.waitFor();
    assert.match(await post.textContent(), new RegExp(`Posted by ${name} on`));

    // blog.js submits the language form as soon as a language is picked; the form sends the
    // browser back to this same URL, so wait for the new page rather than for a URL.
    await page.selectOption("#locale", "es");
    await page.locator('html[lang="es"]').waitFor();
    assert.match(await page.textContent("header"), /Inicio/);
    assert.match(await page.locator("article.post", { hasText: title }).textContent(), new RegExp(`Publicado por ${name} el \\d+ de \\w+ de \\d{4}`));
    assert.match(await page.textContent("#post-count"), /\d+ entradas?/);

    // Logging out also lands on "/", so wait for the logged-out page's login link.
    await page.click("#logout");
    await page.click("#nav-login");
    assert.match(await page.textContent("h1"), /Iniciar sesión/);
    await page.fill("#name", name);
    await page.fill("#password", password);
    await Promise.all([page.waitForURL(`${BASE_URL}/`), page.click("#account-submit")]);
    assert.match(await page.textContent("header"), new RegExp(`¡Hola de nuevo, ${name}!`));
    assert.deepEqual(problems, [], `the browser saw problems:\n  ${problems.join("\n  ")}`);
  } finally {
    await context.close();
  }
});

test("a wrong password is refused with a message", { timeout: TEST_TIMEOUT_MS }, async () => {
  const problems = [];
  const context = await browser.newContext({ locale: "en-US" });
  const page = await openPage(context, problems);
  try {
    await page.goto(`${BASE_URL}/login`);
    await page.fill("#name", "nobody_here");
    await page.fill("#password", "not the password");
    await page.click("#account-submit");
    await page.locator(".error").waitFor();
    assert.match(await page.textContent(".error"), /Wrong username or password/);
    // The refusal is a 422 (which Chromium also logs to the console); nothing else went wrong.
    assert.deepEqual(problems.filter((p) => !p.startsWith("422 ") && !p.includes("status of 422")), []);
  } finally {
    await context.close();
  }
});
