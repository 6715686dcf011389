// What every browser test shares: the server URL and the Chromium to drive, from the
// environment, and a launcher that keeps Chromium off the network.
import { chromium } from "playwright-core";

export const BASE_URL = (process.env.BASE_URL ?? "").replace(/\/+$/, "");
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const TEST_TIMEOUT_MS = Number(process.env.BROWSER_TEST_TIMEOUT_MS ?? 30_000);
// Long enough for a loaded CI machine, short enough that a lost message fails fast.
export const WAIT_MS = Math.min(10_000, TEST_TIMEOUT_MS / 2);

if (!/^https?:\/\//.test(BASE_URL)) {
  console.error("error: set BASE_URL to the example's server, e.g. BASE_URL=http://127.0.0.1:8080");
  process.exit(2);
}

// The background-networking flags keep Chromium from calling out to hosts this sandbox cannot
// reach. Playwright adds a fresh --user-data-dir of its own and removes it on close.
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

// BROWSER_HOME, when set, is the HOME Chromium starts with: its ~/.pki/nssdb holds the test
// CA that an HTTPS run trusts (scripts/browser-test.sh makes both).
export function launchChromium() {
  const env = process.env.BROWSER_HOME ? { ...process.env, HOME: process.env.BROWSER_HOME } : undefined;
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS, timeout: WAIT_MS, env });
}

// Closes the browser even when a test hung; never lets a stuck browser keep the process alive.
export async function closeChromium(browser) {
  await Promise.race([browser?.close(), new Promise((resolve) => setTimeout(resolve, 5_000).unref())]);
}
