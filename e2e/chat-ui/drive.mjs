// Drives LangChain's Agent Chat UI in headless Chromium against agent-server:
// two chat turns on one thread, then a page reload that must show both turns again.
//
//   UI_URL=http://127.0.0.1:3000 API_URL=http://127.0.0.1:8123 node drive.mjs
//
// Environment:
//   UI_URL          where the UI is served (required)
//   API_URL         the server's URL as the browser reaches it (required); passed to the UI
//                   with its `apiUrl` query parameter, so one UI build serves any port
//   ASSISTANT_ID    assistant or graph id (default "agent"), the UI's `assistantId` parameter
//   CHROMIUM        Chromium binary (default /usr/bin/chromium)
//   SCREENSHOT_DIR  where screenshots and report.txt go (default out/ beside this file)
//   STEP_TIMEOUT_MS how long each step may wait (default 60000)
//
// Also opens the thread history panel, which must list the thread by its first message.
// Prints every request the page sends to the server (method, URL, status, request body, when
// the response body ended), every console error or warning, uncaught page errors, failed
// requests, each 4xx/5xx response with its body and every toast the UI showed, then
// "chat-ui e2e: PASS" or the failures. Exits 1 on any failed check, console error, page error,
// toast, failed request (but net::ERR_ABORTED, see below) or 4xx/5xx response.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const UI_URL = required("UI_URL").replace(/\/$/, "");
const API_URL = required("API_URL").replace(/\/$/, "");
const ASSISTANT_ID = process.env.ASSISTANT_ID || "agent";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SHOTS = process.env.SCREENSHOT_DIR || join(here, "out");
const STEP_TIMEOUT = Number(process.env.STEP_TIMEOUT_MS || 60000);

const HUMAN = "div.group.ml-auto"; // HumanMessage's outer element
const AI = "div.group.mr-auto"; // AssistantMessage's outer element
const INPUT = 'textarea[placeholder="Type your message..."]';

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`drive.mjs: ${name} is not set`);
    process.exit(2);
  }
  return value;
}

const failures = [];
const consoleMessages = [];
const pageErrors = [];
const failedRequests = [];
const failedOther = [];
const consoleErrors = [];
const badResponses = [];
const apiTrace = [];
const started = Date.now();
const stamp = () => `+${((Date.now() - started) / 1000).toFixed(1)}s`;

mkdirSync(SHOTS, { recursive: true });
const userDataDir = mkdtempSync(join(tmpdir(), "chat-ui-e2e-"));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: CHROMIUM,
  headless: true,
  viewport: { width: 1280, height: 860 },
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const page = context.pages()[0] ?? (await context.newPage());
// Every toast the UI shows (sonner), kept in the page so short-lived ones are not missed.
await page.addInitScript(() => {
  window.__toasts = [];
  new MutationObserver(() => {
    for (const el of document.querySelectorAll("[data-sonner-toast]")) {
      const text = el.textContent.replace(/\s+/g, " ").trim();
      if (text && !el.__seen) {
        el.__seen = true;
        window.__toasts.push(`${new Date().toISOString().slice(11, 23)} ${text}`);
      }
    }
  }).observe(document, { childList: true, subtree: true, characterData: true });
});
const toastsSeen = [];
async function collectToasts() {
  const seen = await page.evaluate(() => window.__toasts.splice(0)).catch(() => []);
  for (const t of seen) {
    toastsSeen.push(t);
    console.log(`${stamp()} toast: ${t}`);
  }
}

page.on("console", (msg) => {
  if (msg.type() === "error" || msg.type() === "warning") {
    const loc = msg.location();
    consoleMessages.push(`${stamp()} [${msg.type()}] ${msg.text()}${loc?.url ? `  (${loc.url}:${loc.lineNumber})` : ""}`);
    if (msg.type() === "error") consoleErrors.push(msg.text().split("\n")[0]);
  }
});
page.on("pageerror", (err) => pageErrors.push(`${stamp()} ${err.stack || err.message}`));
page.on("requestfailed", (req) => {
  const failure = req.failure()?.errorText ?? "unknown";
  // net::ERR_ABORTED is not a failure: Chromium reports it for a request the page cancels
  // (reload, a stopped stream), and also for most fetch() bodies read to their end through
  // a stream reader, as useStream reads SSE (seen here with any server, a bare Node one too).
  failedRequests.push(`${stamp()} ${req.method()} ${req.url()} -> ${failure}${failure === "net::ERR_ABORTED" ? " (ignored)" : ""}`);
  if (failure !== "net::ERR_ABORTED") failedOther.push(`${req.method()} ${req.url()} -> ${failure}`);
  if (req.url().startsWith(API_URL) || req.url().startsWith(`${UI_URL}/api/`)) {
    apiTrace.push(`${stamp()} ${req.method()} ${req.url()} -> FAILED ${failure}`);
  }
});
// When a server response's body ended (an SSE stream: when the server closed it).
const traceIndex = new Map();
page.on("requestfinished", (req) => {
  const i = traceIndex.get(req);
  if (i !== undefined) apiTrace[i] += `  [body ended ${stamp()}]`;
});
page.on("response", async (res) => {
  const req = res.request();
  const url = res.url();
  const isApi = url.startsWith(API_URL) || url.startsWith(`${UI_URL}/api/`);
  if (isApi) {
    const body = req.postData();
    traceIndex.set(req, apiTrace.length);
    apiTrace.push(
      `${stamp()} ${req.method()} ${url} -> ${res.status()}${body ? `  body=${truncate(body, 800)}` : ""}`,
    );
  }
  if (res.status() >= 400) {
    let text = "";
    try {
      text = await res.text();
    } catch (err) {
      text = `<body unavailable: ${err.message}>`;
    }
    badResponses.push(`${stamp()} ${req.method()} ${url} -> ${res.status()} ${truncate(text, 1000)}`);
  }
});

function truncate(text, n) {
  return text.length > n ? `${text.slice(0, n)}... (${text.length} chars)` : text;
}

let shotNo = 0;
async function shot(name) {
  shotNo += 1;
  const file = join(SHOTS, `${String(shotNo).padStart(2, "0")}-${name}.png`);
  try {
    await page.screenshot({ path: file, fullPage: false });
    console.log(`${stamp()} screenshot ${file}`);
  } catch (err) {
    console.log(`${stamp()} screenshot ${file} failed: ${err.message}`);
  }
}

// A message's text without its action buttons ("Copy content", "Edit", "Refresh").
async function texts(selector) {
  return page.locator(selector).evaluateAll((els) =>
    els.map((el) => {
      const copy = el.cloneNode(true);
      copy.querySelectorAll("button, .sr-only").forEach((b) => b.remove());
      return copy.textContent.replace(/\s+/g, " ").trim();
    }),
  );
}

async function transcript() {
  const humans = await texts(HUMAN);
  const ais = await texts(AI);
  return { humans, ais };
}

function showTranscript(label, { humans, ais }) {
  console.log(`${stamp()} ${label}: ${humans.length} human, ${ais.length} assistant message(s)`);
  humans.forEach((t, i) => console.log(`    human[${i}]: ${JSON.stringify(t)}`));
  ais.forEach((t, i) => console.log(`    ai[${i}]:    ${JSON.stringify(t)}`));
}

// Waits until the page shows `humans` human and `ais` assistant messages, the last assistant
// message has text, and the UI is no longer streaming (its Cancel button is gone).
async function waitForTranscript(step, humans, ais) {
  try {
    await page.waitForFunction(
      ({ HUMAN, AI, humans, ais }) => {
        const h = document.querySelectorAll(HUMAN);
        const a = document.querySelectorAll(AI);
        const streaming = [...document.querySelectorAll("button")].some((b) => b.innerText.trim() === "Cancel");
        return h.length >= humans && a.length >= ais && a[a.length - 1].innerText.trim().length > 0 && !streaming;
      },
      { HUMAN, AI, humans, ais },
      { timeout: STEP_TIMEOUT, polling: 250 },
    );
    // Let late stream events, history fetches and re-renders settle before reading the page.
    await page.waitForTimeout(1500);
    return true;
  } catch (err) {
    const seen = await transcript().catch(() => ({ humans: [], ais: [] }));
    fail(
      `${step}: expected ${humans} human and ${ais} assistant message(s) (finished streaming) within ${STEP_TIMEOUT} ms; ` +
        `saw ${seen.humans.length} human ${JSON.stringify(seen.humans)} and ${seen.ais.length} assistant ${JSON.stringify(seen.ais)}`,
    );
    await shot(`${step}-timeout`);
    return false;
  }
}

function fail(message) {
  failures.push(message);
  console.log(`${stamp()} FAIL ${message}`);
}


async function send(text) {
  const input = page.locator(INPUT);
  await input.fill(text);
  await input.press("Enter");
  console.log(`${stamp()} sent ${JSON.stringify(text)}`);
}

function checkExact(step, seen, humans, ais) {
  if (seen.humans.length !== humans.length || seen.ais.length !== ais.length) {
    fail(
      `${step}: expected exactly ${humans.length} human and ${ais.length} assistant message(s), ` +
        `saw ${seen.humans.length} and ${seen.ais.length} (duplicated or missing messages)`,
    );
  }
  humans.forEach((expected, i) => {
    if (seen.humans[i] !== expected) fail(`${step}: human[${i}] is ${JSON.stringify(seen.humans[i])}, expected ${JSON.stringify(expected)}`);
  });
  ais.forEach((check, i) => {
    if (!check.test(seen.ais[i] ?? "")) fail(`${step}: ai[${i}] is ${JSON.stringify(seen.ais[i])}, expected to match ${check}`);
  });
}

class StepFailed extends Error {}
// A step whose wait timed out makes the later steps meaningless: stop there.
async function expectTranscript(step, humans, ais) {
  const ok = await waitForTranscript(step, humans, ais);
  await collectToasts();
  if (!ok) throw new StepFailed(step);
}
const threadIdOf = () => new URL(page.url()).searchParams.get("threadId");

let exitCode = 1;
try {
  const start = `${UI_URL}/?apiUrl=${encodeURIComponent(API_URL)}&assistantId=${encodeURIComponent(ASSISTANT_ID)}`;
  console.log(`${stamp()} open ${start}`);
  await page.goto(start, { waitUntil: "load", timeout: STEP_TIMEOUT });
  await page.locator(INPUT).waitFor({ state: "visible", timeout: STEP_TIMEOUT });
  await page.waitForTimeout(1500); // the UI's GET /info probe and the thread list search
  await shot("loaded");
  await collectToasts();

  // Turn 1.
  await send("my name is Ada");
  await shot("turn1-sent");
  await expectTranscript("turn1", 1, 1);
  await shot("turn1-reply");
  let seen = await transcript();
  showTranscript("after turn 1", seen);
  checkExact("turn1", seen, ["my name is Ada"], [/\S/]);
  const threadId = threadIdOf();
  console.log(`${stamp()} url after turn 1: ${page.url()}`);
  if (!threadId) fail("turn1: the URL has no threadId after the first run");

  // Turn 2, on the same thread.
  await send("what is my name?");
  await expectTranscript("turn2", 2, 2);
  await shot("turn2-reply");
  seen = await transcript();
  showTranscript("after turn 2", seen);
  checkExact("turn2", seen, ["my name is Ada", "what is my name?"], [/\S/, /\bAda\b/]);
  if (threadIdOf() !== threadId) fail(`turn2: threadId changed from ${threadId} to ${threadIdOf()}`);

  // Reload: the thread id in the URL must bring the conversation back from the server.
  console.log(`${stamp()} reload ${page.url()}`);
  await page.reload({ waitUntil: "load", timeout: STEP_TIMEOUT });
  await page.locator(INPUT).waitFor({ state: "visible", timeout: STEP_TIMEOUT });
  await expectTranscript("reload", 2, 2);
  await page.waitForTimeout(1500);
  await collectToasts();
  await shot("reloaded");
  seen = await transcript();
  showTranscript("after reload", seen);
  checkExact("reload", seen, ["my name is Ada", "what is my name?"], [/\S/, /\bAda\b/]);
  if (threadIdOf() !== threadId) fail(`reload: the URL's threadId is ${threadIdOf()}, expected ${threadId}`);

  // The thread history panel (POST /threads/search) names the thread by its first message.
  // The panel is in the page while closed, off-screen to the left: look only on screen.
  const opened = await page.evaluate(() => {
    const toggle = [...document.querySelectorAll("button")].find(
      (b) => b.querySelector("svg.lucide-panel-right-close") && b.getBoundingClientRect().left >= 0,
    );
    toggle?.click();
    return !!toggle;
  });
  if (!opened) fail("history: no button to open the thread history panel");
  try {
    const handle = await page.waitForFunction(
      () =>
        [...document.querySelectorAll("button p.truncate")].find(
          (p) => p.textContent.includes("my name is Ada") && p.getBoundingClientRect().left >= 0,
        )?.textContent,
      null,
      { timeout: 10000, polling: 250 },
    );
    console.log(`${stamp()} the thread history panel lists the thread as ${JSON.stringify(await handle.jsonValue())}`);
  } catch {
    const listed = await page.locator("button p.truncate").allTextContents();
    fail(`history: the thread history panel does not show "my name is Ada"; its items: ${JSON.stringify(listed)}`);
  }
  await page.waitForTimeout(500);
  await shot("history");
  await collectToasts();
} catch (err) {
  if (err instanceof StepFailed) {
    console.log(`${stamp()} stopping after the failed step ${err.message}`);
  } else {
    // Playwright's messages carry a long, coloured call log: keep the first line.
    fail(`driver error: ${(err.message || String(err)).split("\n")[0]}`);
    console.log(err.stack);
    await shot("driver-error");
  }
} finally {
  await context.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}

if (toastsSeen.length) fail(`the UI showed toast(s): ${JSON.stringify(toastsSeen)}`);
if (consoleErrors.length) fail(`${consoleErrors.length} console error(s), the first: ${consoleErrors[0]}`);
if (pageErrors.length) fail(`${pageErrors.length} uncaught page error(s), the first: ${pageErrors[0].split("\n")[0]}`);
if (failedOther.length) fail(`${failedOther.length} failed request(s), the first: ${failedOther[0]}`);
if (badResponses.length) fail(`${badResponses.length} 4xx/5xx response(s), the first: ${badResponses[0].slice(0, 300)}`);
exitCode = failures.length ? 1 : 0;

const sections = [
  ["requests to the server", apiTrace],
  ["console errors and warnings", consoleMessages],
  ["uncaught page errors", pageErrors],
  ["failed requests", failedRequests],
  ["4xx/5xx responses", badResponses],
  ["toasts", toastsSeen],
];
const report = [];
for (const [title, lines] of sections) {
  report.push(`--- ${title} (${lines.length})`);
  report.push(...lines.map((l) => `  ${l}`));
}
console.log(report.join("\n"));
writeFileSync(join(SHOTS, "report.txt"), `${report.join("\n")}\n--- failures (${failures.length})\n${failures.map((f) => `  ${f}`).join("\n")}\n`);

if (exitCode === 0) {
  console.log("chat-ui e2e: PASS (two turns and a reload)");
} else {
  console.log(`chat-ui e2e: FAIL (${failures.length})`);
  failures.forEach((f) => console.log(`  - ${f}`));
}
process.exit(exitCode);
