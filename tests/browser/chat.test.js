#!/usr/bin/env node
// Browser test of examples/chat.rs: headless Chromium opens the chat page as two users (two
// browser contexts: separate cookies/storage, separate WebSockets), alice sends a unique message,
// bob must see it; bob answers, alice must see that. Then a side-by-side screenshot of both pages.
//
//   node chat.test.js URL SCREENSHOT.png      (tests/browser/run.sh starts the server and calls this)
//
// CHROMIUM (default: `chromium` on PATH) is the browser binary; playwright-core drives it over the
// DevTools protocol and gives it a fresh temporary --user-data-dir, removed on close.
"use strict";

const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const { chromium } = require("playwright-core");

const [url, shotPath] = process.argv.slice(2);
if (!url || !shotPath) {
  console.error("usage: node chat.test.js URL SCREENSHOT.png");
  process.exit(2);
}
const WAIT_MS = 10_000; // each "until it appears" wait
const TOTAL_MS = 90_000; // the whole test, launch included

const fail = (msg) => {
  console.error(`FAIL: ${msg}`);
  process.exit(1);
};
// A hard bound on everything, in case the browser or a protocol call hangs.
setTimeout(() => fail(`test did not finish within ${TOTAL_MS / 1000} s`), TOTAL_MS).unref();

const executablePath =
  process.env.CHROMIUM ||
  (() => {
    try {
      return execFileSync("sh", ["-c", "command -v chromium"], { encoding: "utf8" }).trim();
    } catch {
      return fail("chromium not found on PATH (set CHROMIUM=/path/to/chromium)");
    }
  })();

const step = (msg) => console.log(`  - ${msg}`);

// The text of a page's chat log, one line per <p>.
const logLines = (page) =>
  page
    .$$eval("#log p", (ps) =>
      ps.map((p) => {
        const b = p.querySelector("b");
        return b ? `${b.textContent}: ${p.textContent.slice(b.textContent.length)}` : p.textContent;
      })
    )
    .catch((e) => [`<unreadable: ${e.message}>`]);

// Wait until `page`'s log has a line satisfying `pred` (run in the page), or fail with `what`.
async function waitForLine(page, who, what, pred, arg) {
  try {
    await page.waitForFunction(
      ([src, arg]) => {
        const pred = new Function("return " + src)();
        return [...document.querySelectorAll("#log p")].some((p) => pred(p, arg));
      },
      [pred.toString(), arg],
      { timeout: WAIT_MS, polling: 50 }
    );
  } catch (e) {
    const lines = await logLines(page);
    fail(
      `${who} did not see ${what} within ${WAIT_MS / 1000} s` +
        ` (${e.message.split("\n")[0]})\n  ${who}'s log:\n` +
        lines.map((l) => `    | ${l}`).join("\n")
    );
  }
}

async function main() {
  const t0 = Date.now();
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    timeout: 30_000,
    args: [
      "--headless=new",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-dev-shm-usage",
    ],
  });
  try {
    step(`chromium ${browser.version()} started (${executablePath})`);
    const viewport = { width: 640, height: 490 };
    const users = [];
    for (const name of ["alice", "bob"]) {
      const context = await browser.newContext({ viewport, deviceScaleFactor: 1 });
      const page = await context.newPage();
      page.setDefaultTimeout(WAIT_MS);
      const errors = [];
      page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
      // Failed requests are reported below, with their URL; the browser's own /favicon.ico
      // request is a 404 (the example serves no icon) and does not count.
      page.on("console", (m) => {
        if (m.type() === "error" && !m.text().startsWith("Failed to load resource"))
          errors.push(`console error: ${m.text()}`);
      });
      page.on("response", (r) => {
        if (r.status() >= 400 && new URL(r.url()).pathname !== "/favicon.ico")
          errors.push(`HTTP ${r.status()} for ${r.url()}`);
      });
      page.on("requestfailed", (r) => errors.push(`request failed: ${r.url()} (${r.failure()?.errorText})`));
      const res = await page.goto(url, { waitUntil: "load", timeout: WAIT_MS });
      if (!res || res.status() !== 200) fail(`${name}: GET ${url} answered ${res && res.status()}`);
      if ((await page.title()) !== "oneloop chat") fail(`${name}: unexpected page title ${await page.title()}`);
      users.push({ name, page, errors });
    }
    const [alice, bob] = users;

    // Both WebSockets open and subscribed: each page gets its own "connected" line and the
    // server's "someone joined (2 online)" (published after bob subscribed, so both get it).
    for (const u of users) {
      await waitForLine(u.page, u.name, '"connected"', (p) => p.textContent === "connected");
      await waitForLine(u.page, u.name, '"someone joined (2 online)"', (p) =>
        p.textContent.includes("(2 online)")
      );
    }
    step("both pages connected (2 online)");

    // The page pre-fills a random guest name; set ours.
    for (const u of users) await u.page.fill("#name", u.name);

    const nonce = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    const send = async (from, text) => {
      await from.page.fill("#text", text);
      await from.page.click("form button");
      // The page clears the input once ws.send() ran.
      await from.page.waitForFunction(() => document.getElementById("text").value === "", null, {
        timeout: WAIT_MS,
      });
    };
    // A chat line as the page renders it: <p><b>name</b>text</p>.
    const isMsg = (p, [name, text]) => {
      const b = p.querySelector("b");
      return !!b && b.textContent === name && p.textContent === name + text;
    };

    const hello = `hello from alice, in a browser (${nonce})`;
    await send(alice, hello);
    await waitForLine(bob.page, "bob", `alice's message "${hello}"`, isMsg, ["alice", hello]);
    step(`bob sees alice's message "${hello}"`);
    await waitForLine(alice.page, "alice", `her own message "${hello}"`, isMsg, ["alice", hello]);
    step("alice sees her own message (the server publishes to the sender too)");

    const reply = `hi alice, bob here (${nonce})`;
    await send(bob, reply);
    await waitForLine(alice.page, "alice", `bob's reply "${reply}"`, isMsg, ["bob", reply]);
    await waitForLine(bob.page, "bob", `his own reply "${reply}"`, isMsg, ["bob", reply]);
    step(`alice sees bob's reply "${reply}"`);

    // The chat endpoint uses shared permessage-deflate (docs/ws.md "Compression"): Chromium
    // offers it, so both sockets must have it, and a message over the 1 KiB threshold (sent
    // compressed once for the room) must arrive intact.
    for (const u of users) {
      const ext = await u.page.evaluate("ws.extensions");
      if (!ext.startsWith("permessage-deflate"))
        fail(`${u.name}: the WebSocket negotiated ${JSON.stringify(ext)}, not permessage-deflate`);
    }
    step("both WebSockets negotiated permessage-deflate");
    const long = `${nonce} ` + "compressible chat text, ".repeat(60);
    await send(alice, long.trim());
    await waitForLine(bob.page, "bob", "alice's 1.5 KB message", isMsg, ["alice", long.trim()]);
    step(`bob sees alice's ${long.trim().length}-character message (compressed on the wire)`);

    for (const u of users) if (u.errors.length) fail(`${u.name}: ${u.errors.join("; ")}`);

    // One picture of both windows side by side, composed in a third page.
    const shots = [];
    for (const u of users) shots.push((await u.page.screenshot({ type: "png" })).toString("base64"));
    const composer = await (await browser.newContext({ viewport: { width: 1340, height: 600 } })).newPage();
    await composer.setContent(`<!doctype html><meta charset="utf-8">
      <style>
        body { margin: 0; padding: 16px; background: #e8e8ec; font: 14px system-ui, sans-serif;
               display: flex; gap: 20px; width: max-content; }
        figure { margin: 0; } figcaption { margin: 0 0 6px 2px; color: #444; }
        img { display: block; border: 1px solid #999; border-radius: 6px; background: #fff;
              box-shadow: 0 2px 8px rgba(0,0,0,.15); }
      </style>
      ${users
        .map(
          (u, i) => `<figure><figcaption>browser context ${i + 1}: <b>${u.name}</b></figcaption>
                     <img src="data:image/png;base64,${shots[i]}"></figure>`
        )
        .join("")}`);
    await composer.waitForFunction(() => [...document.images].every((i) => i.complete && i.naturalWidth));
    fs.mkdirSync(path.dirname(path.resolve(shotPath)), { recursive: true });
    await composer.locator("body").screenshot({ path: shotPath, type: "png" });
    step(`screenshot of both pages: ${shotPath}`);
    console.log(`PASS: chat works across two browser contexts (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  } finally {
    await browser.close().catch(() => {});
  }
}

main().catch((e) => fail(e.stack || String(e)));
