/**
 * `ess health`: asks a running `ess serve` or `ess mqtt --listen` on this machine whether it
 * runs: the health check of the container image, which has no curl.
 *
 * @module
 */
import { deviceNameProblem, MAX_DEVICES } from "../lib/config.ts";
import { readCappedBody } from "../lib/capped_body.ts";
import { errorText, EssError, UsageError } from "../lib/errors.ts";
import { authority, DEFAULT_LISTEN, type ListenAddress, parseListen } from "../lib/serve/listen.ts";
import { defineCommand, errorAt, GENERAL_OPTIONS } from "./_cli.ts";
import { LISTEN_OPTION } from "./_poll.ts";

/** Where to ask: a wildcard address is asked on this machine's loopback. */
function askAt(address: ListenAddress): string {
  const hostname = address.hostname === "0.0.0.0"
    ? "127.0.0.1"
    : address.hostname === "::" || address.hostname === "[::]"
    ? "::1"
    : address.hostname;
  return `http://${authority({ hostname, port: address.port })}/healthz`;
}

/** Why `fetch` failed, in a few words: "Connection refused", or the time-out. */
function whyNoAnswer(err: unknown, timeoutMs: number): string {
  if ((err as Error).name === "TimeoutError") return `nothing within ${timeoutMs / 1000} s`;
  const cause = errorText((err as Error).cause ?? err);
  return /: ([^:]+?)(?: \(os error \d+\))?$/.exec(cause)?.[1] ?? cause;
}

/** The largest answer read from /healthz: ess's is a few dozen bytes. */
const MAX_ANSWER_BYTES = 4096;

/** What `up` says of a device. */
function upText(up: unknown): string {
  return up === true ? "up" : up === false ? "unreachable" : "not read yet";
}

/**
 * `device up`, or for a site (`devices` in the answer) `devices: garage up, house unreachable`:
 * only names a config may hold, at most {@link MAX_DEVICES} of them.
 */
function devicesText(body: { up?: unknown; devices?: unknown }): string {
  const devices = body.devices;
  if (typeof devices !== "object" || devices === null || Array.isArray(devices)) {
    return `device ${upText(body.up)}`;
  }
  const named = Object.entries(devices)
    .filter(([name]) => deviceNameProblem(name) === undefined)
    .slice(0, MAX_DEVICES);
  return `devices: ${named.map(([name, up]) => `${name} ${upText(up)}`).join(", ")}`;
}

const command = defineCommand({
  name: "health",
  usage: "health [--listen ADDR:PORT]",
  description: [
    "Asks the ess serving on --listen (read like 'ess serve' and 'ess mqtt' read it: the",
    "option, ESS_LISTEN or listen in the config file) for /healthz, and exits 0 when it",
    "answers that it runs, 1 otherwise. A wildcard address (0.0.0.0) is asked on 127.0.0.1.",
    "It says nothing of the device: ess rides out device outages itself, so a restart would",
    "not help. The container image's health check runs it.",
  ].join("\n"),
  options: [
    { ...LISTEN_OPTION, help: "where ess serves", default: DEFAULT_LISTEN },
    {
      name: "timeout",
      type: "string",
      arg: "SECONDS",
      help: "give up after this long",
      default: "5",
      config: false,
      group: "Dashboard and API",
    },
    ...GENERAL_OPTIONS,
  ],
  examples: ["ess health", "ess health --listen 127.0.0.1:8099"],
  async run(p, io) {
    const listen = p.get("listen");
    let address: ListenAddress;
    try {
      address = parseListen(String(listen?.value ?? DEFAULT_LISTEN));
    } catch (err) {
      throw listen ? errorAt(listen.origin, (err as UsageError).message) : err;
    }
    const url = askAt(address);
    const timeoutMs = (p.seconds("timeout") ?? 5) * 1000;
    let status: number;
    let text: string;
    try {
      const answer = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
      status = answer.status;
      text = await readCappedBody(answer, MAX_ANSWER_BYTES) ?? "";
    } catch (err) {
      throw new EssError(
        `no answer from ${url}: ${whyNoAnswer(err, timeoutMs)} (is ess running with --listen ` +
          `${authority(address)}?)`,
      );
    }
    let body: { status?: unknown; up?: unknown } | undefined;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (status !== 200 || body?.status !== "ok") {
      throw new EssError(`${url} answered HTTP ${status}, not ess's "ok"`);
    }
    io.out(`ok: ess runs at ${authority(address)} (${devicesText(body)})\n`);
    return 0;
  },
});

export default command;
