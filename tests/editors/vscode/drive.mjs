// Drives a real VS Code (code-server in headless Chromium) like a user would: opens the workspace
// and a file, waits for the hotd status bar item, then for each step goes to a line, replaces its
// text after the indentation, saves with Ctrl+S, and waits for the status bar (and, when asked, the
// Problems view) to show the expected text, taking a screenshot when asked.
// Usage: node drive.mjs SPEC.json RESULT.json. SPEC: {url, folder, file, chromium, profile, screenshotDir,
// waitReady, steps: [{line, text, waitStatus, waitProblems?, screenshot?}]}. RESULT: {steps, failure}.
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";

const [specPath, resultPath] = process.argv.slice(2);
const spec = JSON.parse(readFileSync(specPath, "utf8"));
const result = { steps: [], failure: null };
const statusItem = ".statusbar-item:has-text('hotd:')";

async function statusText(page) {
  return (await page.locator(statusItem).first().innerText()).trim();
}

async function waitForStatus(page, expected) {
  await page.waitForFunction(
    ([selector, text]) => [...document.querySelectorAll(".statusbar-item")].some((e) => e.innerText.includes(text)),
    [statusItem, expected],
    { timeout: 60_000 },
  );
}

async function run(page) {
  await page.goto(`${spec.url}/?folder=${encodeURIComponent(spec.folder)}`);
  await page.waitForSelector(".monaco-workbench", { timeout: 90_000 });
  // Quick Open the file, as a user would.
  await page.keyboard.press("Control+P");
  await page.waitForSelector(".quick-input-widget input", { state: "visible", timeout: 30_000 });
  await page.keyboard.insertText(spec.file);
  await page.waitForSelector(`.quick-input-list .monaco-list-row[aria-label*='${spec.file}']`, { timeout: 30_000 });
  await page.keyboard.press("Enter");
  await page.waitForSelector(`.tab[aria-label*='${spec.file}']`, { timeout: 30_000 });
  await waitForStatus(page, spec.waitReady);  // the extension and `hotd lsp` are up, the app is attached

  for (const step of spec.steps) {
    const editor = page.locator(".editor-instance .monaco-editor textarea").first();
    await editor.focus();
    await page.keyboard.press("Control+G");
    await page.keyboard.insertText(String(step.line));
    await page.keyboard.press("Enter");
    await page.keyboard.press("End");
    await page.keyboard.press("Shift+Home");  // selects from the first non-blank character
    await page.keyboard.insertText(step.text);
    await page.keyboard.press("Control+S");
    await waitForStatus(page, step.waitStatus);
    if (step.waitProblems) {
      await page.keyboard.press("Control+Shift+M");
      await page.waitForFunction(
        (text) => [...document.querySelectorAll(".markers-panel .monaco-list-row")].some((e) => e.innerText.includes(text)),
        step.waitProblems,
        { timeout: 60_000 },
      );
    }
    const problems = await page.locator(".markers-panel .monaco-list-row").allInnerTexts().catch(() => []);
    if (step.screenshot) await page.screenshot({ path: path.join(spec.screenshotDir, step.screenshot) });
    result.steps.push({ status: await statusText(page), problems });
  }
}

const browser = await chromium.launchPersistentContext(spec.profile, {
  executablePath: spec.chromium,
  headless: true,
  viewport: { width: 1280, height: 800 },
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
});
const page = browser.pages()[0] ?? (await browser.newPage());
try {
  await run(page);
} catch (error) {
  result.failure = String(error?.stack ?? error);
  await page.screenshot({ path: path.join(spec.screenshotDir, "failure.png") }).catch(() => {});
} finally {
  writeFileSync(resultPath, JSON.stringify(result, null, 2));
  await browser.close();
}
