// Opens the page in Debian's Chromium (headless, through playwright-core)
// and prints what it wrote into <pre id="results"> once its calls are done.
//
//   node open.mjs URL
import { chromium } from "playwright-core";

const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
try {
  const page = await browser.newPage();
  page.on("console", (m) => console.error(`page: ${m.text()}`));
  await page.goto(process.argv[2]);
  await page.waitForFunction(() => document.getElementById("results").textContent !== "running", null, {
    timeout: 30000,
  });
  console.log(await page.textContent("#results"));
} finally {
  await browser.close();
}
