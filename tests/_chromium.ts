/**
 * Headless Chromium for the dashboard tests, driven over the DevTools protocol with Deno's own
 * WebSocket: the system's browser (Debian's `chromium`), never a downloaded one.
 *
 * @module
 */

import { waitFor } from "./_wait.ts";

/** Where Chromium is installed, if it is. */
export function chromiumPath(): string | undefined {
  const names = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"];
  const dirs = (Deno.env.get("PATH") ?? "").split(":").concat(["/usr/bin"]);
  for (const dir of dirs) {
    for (const name of names) {
      try {
        if (Deno.statSync(`${dir}/${name}`).isFile) return `${dir}/${name}`;
      } catch {
        continue;
      }
    }
  }
  return undefined;
}

// deno-lint-ignore no-explicit-any
type Json = any;

/** One page of the browser, over its own DevTools connection. */
export class Page {
  /** Console errors, uncaught exceptions and browser log errors (CSP violations among them). */
  readonly problems: string[] = [];
  #socket: WebSocket;
  #nextId = 1;
  #pending = new Map<number, { resolve(v: Json): void; reject(e: Error): void }>();
  #listeners = new Map<string, ((params: Json) => void)[]>();

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    socket.onmessage = (e) => this.#receive(JSON.parse(e.data));
  }

  /** Connects to a page target's WebSocket and starts collecting problems. */
  static async connect(url: string): Promise<Page> {
    const socket = new WebSocket(url);
    await new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = () => reject(new Error(`cannot connect to ${url}`));
    });
    const page = new Page(socket);
    page.on("Runtime.consoleAPICalled", (p) => {
      if (p.type === "error" || p.type === "assert") {
        page.problems.push(
          `console: ${p.args.map((a: Json) => a.value ?? a.description).join(" ")}`,
        );
      }
    });
    page.on("Runtime.exceptionThrown", (p) => {
      page.problems.push(
        `exception: ${p.exceptionDetails.exception?.description ?? p.exceptionDetails.text}`,
      );
    });
    page.on("Log.entryAdded", (p) => {
      if (p.entry.level === "error") page.problems.push(`log: ${p.entry.text}`);
    });
    await Promise.all([
      page.send("Page.enable"),
      page.send("Runtime.enable"),
      page.send("Log.enable"),
    ]);
    return page;
  }

  /** Sends one protocol command and resolves with its result. */
  send(method: string, params: Json = {}): Promise<Json> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#socket.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Calls `handler` for every event of this name. */
  on(method: string, handler: (params: Json) => void): void {
    this.#listeners.set(method, [...(this.#listeners.get(method) ?? []), handler]);
  }

  /** Opens `url` and resolves once its load event fired. */
  async navigate(url: string): Promise<void> {
    const loaded = new Promise<void>((resolve) => this.on("Page.loadEventFired", () => resolve()));
    await this.send("Page.navigate", { url });
    await loaded;
  }

  /** The value of a JavaScript expression in the page (promises awaited). */
  async evaluate<T = Json>(expression: string): Promise<T> {
    const { result, exceptionDetails } = await this.send("Runtime.evaluate", {
      expression,
      returnByValue: true,
      awaitPromise: true,
    });
    if (exceptionDetails) {
      throw new Error(`${expression}: ${exceptionDetails.exception?.description}`);
    }
    return result.value as T;
  }

  /** Waits until `expression` is truthy in the page; throws naming `what` after `timeoutMs`. */
  waitFor(expression: string, what: string, timeoutMs = 10_000): Promise<void> {
    return waitFor(async () => Boolean(await this.evaluate(expression)), {
      what: `${what} (${expression})`,
      timeoutMs,
      everyMs: 50,
    });
  }

  /** Sets the viewport (CSS pixels), as a phone (touch, mobile) or a desktop. */
  async viewport(width: number, height: number, mobile = false): Promise<void> {
    await this.send("Emulation.setDeviceMetricsOverride", {
      width,
      height,
      deviceScaleFactor: mobile ? 2 : 1,
      mobile,
    });
  }

  /** A PNG of the page, down to `maxHeight` CSS pixels of it. */
  async screenshot(maxHeight: number): Promise<Uint8Array> {
    const { cssContentSize } = await this.send("Page.getLayoutMetrics");
    const height = Math.min(maxHeight, Math.ceil(cssContentSize.height));
    const { data } = await this.send("Page.captureScreenshot", {
      format: "png",
      captureBeyondViewport: true,
      clip: { x: 0, y: 0, width: Math.ceil(cssContentSize.width), height, scale: 1 },
    });
    return Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  }

  /** Closes the DevTools connection. */
  close(): void {
    this.#socket.close();
  }

  #receive(message: Json): void {
    if (message.id !== undefined) {
      const pending = this.#pending.get(message.id);
      this.#pending.delete(message.id);
      if (message.error) pending?.reject(new Error(message.error.message));
      else pending?.resolve(message.result);
      return;
    }
    for (const handler of this.#listeners.get(message.method) ?? []) handler(message.params);
  }
}

/** A running headless Chromium with one page. */
export interface Browser {
  /** The page Chromium opened. */
  page: Page;
  /** Ends Chromium and removes its profile. */
  close(): Promise<void>;
}

/**
 * Starts headless Chromium on a free debugging port with a fresh profile; `args` are added to
 * its command line (`--host-resolver-rules=...` to point a name at loopback).
 */
export async function launchChromium(args: readonly string[] = []): Promise<Browser> {
  const path = chromiumPath();
  if (!path) throw new Error("chromium is not installed");
  const profile = await Deno.makeTempDir({ prefix: "ess-chromium-" });
  const child = new Deno.Command(path, {
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-extensions",
      "--hide-scrollbars",
      "--remote-debugging-address=127.0.0.1",
      "--remote-debugging-port=0",
      `--user-data-dir=${profile}`,
      ...args,
      "about:blank",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    await child.status;
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  };
  try {
    const port = await devToolsPort(child.stderr);
    const targets: Json[] = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
    const target = targets.find((t) => t.type === "page");
    if (!target) throw new Error("chromium opened no page");
    const page = await Page.connect(target.webSocketDebuggerUrl);
    return {
      page,
      async close() {
        page.close();
        await stop();
      },
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Reads Chromium's stderr until it says where DevTools listens; drains the rest. */
async function devToolsPort(stderr: ReadableStream<Uint8Array>): Promise<number> {
  const reader = stderr.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const until = Date.now() + 20_000;
  while (Date.now() < until) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
    const m = /DevTools listening on ws:\/\/[^:]+:(\d+)\//.exec(text);
    if (m) {
      (async () => {
        while (!(await reader.read()).done) { /* keep the pipe from filling */ }
      })().catch(() => {});
      return Number(m[1]);
    }
  }
  throw new Error(`chromium did not start its DevTools: ${text.slice(-500)}`);
}
