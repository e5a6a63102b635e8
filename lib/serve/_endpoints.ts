/**
 * The endpoints of the server that hold state of their own, each a class that
 * `createHandler` wires: graphs (through the cache, with a time-out), controls (the token and
 * its back-off, the body, the queue) and the `Host` check.
 *
 * @module
 */
import { errorText, preview } from "../errors.ts";
import type { Logger } from "../log.ts";
import { type CalendarDate, GRAPH_DEVICES, GRAPH_SPANS } from "../device/states.ts";
import { CONTROL_NAMES, type ControlName, parseControl } from "../device/controls.ts";
import {
  type Answers,
  type BodyProblem,
  hasBearerToken,
  isCrossOrigin,
  readCappedText,
} from "./_http.ts";
import type { GraphCache, GraphResult } from "./_graph.ts";
import { hostOfHeader } from "./hosts.ts";
import { MAX_TOKEN_DELAY_MS, TokenGuard } from "./_token_guard.ts";
import type { ServeSource } from "./source.ts";

const JSON_TEXT = "application/json";

function timeout<T>(ms: number, value: T): { promise: Promise<T>; cancel(): void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const promise = new Promise<T>((resolve) => timer = setTimeout(() => resolve(value), ms));
  return { promise, cancel: () => clearTimeout(timer) };
}

/**
 * Parses a `YYYY-MM-DD` query value into a real calendar date from 2000 to 2099 (the device
 * knows nothing older, and nothing gains from asking it about the far future).
 *
 * @example
 * ```ts
 * import { deepEqual, equal } from "node:assert/strict";
 * deepEqual(parseQueryDate("2024-06-15"), { year: 2024, month: 6, day: 15 });
 * equal(parseQueryDate("2024-02-30"), undefined);
 * ```
 */
export function parseQueryDate(text: string): CalendarDate | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (!m) return undefined;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const check = new Date(Date.UTC(year, month - 1, day));
  const real = check.getUTCFullYear() === year && check.getUTCMonth() === month - 1 &&
    check.getUTCDate() === day;
  return real && year >= 2000 && year <= 2099 ? { year, month, day } : undefined;
}

const BODY_PROBLEMS: Record<BodyProblem, [number, string]> = {
  "too-large": [413, "the body is too large"],
  "timeout": [408, "the body did not arrive in time"],
};

/**
 * `GET /api/graph/{device}/{span}?date=`: checks the request, asks the {@link GraphCache} and
 * turns what it gives, or the time-out, into an answer.
 */
export class GraphEndpoint {
  readonly #graphs: GraphCache;
  readonly #answers: Answers;
  readonly #timeoutMs: number;
  readonly #now: () => number;

  constructor(graphs: GraphCache, answers: Answers, timeoutMs: number, now: () => number) {
    this.#graphs = graphs;
    this.#answers = answers;
    this.#timeoutMs = timeoutMs;
    this.#now = now;
  }

  /**
   * The answer to a graph request whose path gave `params` (`device`: what the graph shows,
   * `span`), of the device named `from` where the server serves several.
   */
  async answer(params: Record<string, string>, url: URL, from?: string): Promise<Response> {
    const device = GRAPH_DEVICES.find((d) => d === params["device"]);
    const span = GRAPH_SPANS.find((s) => s === params["span"]);
    if (!device || !span) {
      const path = from === undefined ? "/api/graph" : `/api/graph/${from}`;
      return this.#answers.error(
        404,
        `no such graph: use ${path}/{${GRAPH_DEVICES.join("|")}}/{${GRAPH_SPANS.join("|")}}`,
      );
    }
    const dateText = url.searchParams.get("date");
    let date: CalendarDate | undefined;
    if (dateText === null || dateText === "") {
      const today = new Date(this.#now());
      date = { year: today.getFullYear(), month: today.getMonth() + 1, day: today.getDate() };
    } else {
      date = parseQueryDate(dateText);
      if (!date) {
        return this.#answers.error(
          400,
          `bad date ${JSON.stringify(dateText.slice(0, 40))}: use YYYY-MM-DD, 2000 to 2099`,
        );
      }
    }
    const wait = timeout<GraphResult | "timeout">(this.#timeoutMs, "timeout");
    try {
      const result = await Promise.race([
        this.#graphs.get(device, span, date, from),
        wait.promise,
      ]);
      if (result === "busy") {
        return this.#answers.error(503, "the device is busy with other graphs; try again soon", {
          "retry-after": "5",
        });
      }
      if (result === "timeout") {
        return this.#answers.error(
          504,
          `the device did not send the ${device} ${span} graph in time`,
        );
      }
      return this.#answers.text(200, result, JSON_TEXT);
    } catch (err) {
      return this.#answers.error(
        502,
        `reading the ${device} ${span} graph failed: ${errorText(err)}`,
      );
    } finally {
      wait.cancel();
    }
  }
}

/** The limits a {@link ControlEndpoint} keeps (see `ServeLimits`). */
export interface ControlLimits {
  maxBodyBytes: number;
  bodyTimeoutMs: number;
  controlWaitMs: number;
  maxControlsWaiting: number;
}

/** What a {@link ControlEndpoint} works with. */
export interface ControlDeps {
  /** `undefined`: controls are off (403). */
  token: string | undefined;
  limits: ControlLimits;
  answers: Answers;
  log: Logger;
  now: () => number;
}

/**
 * `POST /api/control/{name}` (`/api/control/{device}/{name}` of a site): the token (with a
 * back-off for wrong ones, see `_token_guard.ts`), the origin, the body, then the command,
 * handed to the device's source and awaited for a while. The token's back-off and the cap on
 * waiting requests hold for every device together.
 */
export class ControlEndpoint {
  readonly #token: string | undefined;
  readonly #limits: ControlLimits;
  readonly #answers: Answers;
  readonly #log: Logger;
  readonly #guard: TokenGuard;
  #waiting = 0;

  constructor(deps: ControlDeps) {
    this.#token = deps.token;
    this.#limits = deps.limits;
    this.#answers = deps.answers;
    this.#log = deps.log;
    this.#guard = new TokenGuard(deps.now);
  }

  /**
   * The answer to a control request for `source` whose path gave `params`, from the client
   * `remote` (`host:port`) at `address` (its IP address, which the back-off counts by).
   */
  async answer(
    request: Request,
    source: ServeSource,
    params: Record<string, string>,
    remote: string,
    address: string,
  ): Promise<Response> {
    const name = CONTROL_NAMES.find((n) => n === params["name"]);
    if (!name) {
      return this.#answers.error(404, `no such control: one of ${CONTROL_NAMES.join(", ")}`);
    }
    if (this.#token === undefined) {
      return this.#answers.error(
        403,
        "controls are off: start ess with --control-token to allow them",
      );
    }
    const waitMs = this.#guard.waitMs(address);
    if (waitMs > 0) {
      const seconds = Math.ceil(waitMs / 1000);
      return this.#answers.error(429, `too many wrong tokens: try again in ${seconds} s`, {
        "retry-after": String(seconds),
      });
    }
    if (!hasBearerToken(request, this.#token)) {
      if (request.headers.has("authorization")) this.#wrongToken(address);
      return this.#answers.error(401, "a control needs the header Authorization: Bearer <token>", {
        "www-authenticate": 'Bearer realm="ess"',
      });
    }
    this.#guard.succeeded(address);
    if (isCrossOrigin(request)) {
      return this.#answers.error(403, "controls are not taken from pages of another origin");
    }
    const type = request.headers.get("content-type");
    if (type !== null && !/^text\/plain\s*(;.*)?$/i.test(type)) {
      return this.#answers.error(415, "send the command as text/plain");
    }
    if (this.#waiting >= this.#limits.maxControlsWaiting) {
      return this.#answers.error(503, "too many control requests are waiting; try again", {
        "retry-after": "5",
      });
    }
    this.#waiting++;
    try {
      return await this.#queue(request, source, name, remote, params["device"]);
    } finally {
      this.#waiting--;
    }
  }

  #wrongToken(address: string): void {
    const failure = this.#guard.failed(address);
    if (failure.first) {
      this.#log.warning(
        `wrong control token from ${address}: each further wrong one makes it wait longer, ` +
          `up to ${MAX_TOKEN_DELAY_MS / 1000} s`,
      );
    } else {
      this.#log.debug(
        `wrong control token from ${address} (${failure.failures} in a row; it waits ` +
          `${failure.delayMs / 1000} s)`,
      );
    }
  }

  async #queue(
    request: Request,
    source: ServeSource,
    name: ControlName,
    remote: string,
    device: string | undefined,
  ): Promise<Response> {
    const body = await readCappedText(
      request,
      this.#limits.maxBodyBytes,
      this.#limits.bodyTimeoutMs,
    );
    if (body === "too-large" || body === "timeout") {
      const [status, message] = BODY_PROBLEMS[body];
      return this.#answers.error(status, message);
    }
    if (body.trim() === "") {
      return this.#answers.error(400, `the body is empty: send the ${name} value`);
    }
    const command = parseControl(name, body);
    if (typeof command === "string") {
      return this.#answers.error(400, `${name}: ${command}; nothing sent to the device`);
    }
    // The control queue logs each command it writes, with this request as its source.
    const of = device === undefined ? "" : ` of ${device}`;
    this.#log.debug(`control ${name}${of} from ${remote}: ${command.description}`);
    const wait = timeout(this.#limits.controlWaitMs, "queued" as const);
    try {
      const outcome = await Promise.race([
        source.control(name, command, `http ${remote}`),
        wait.promise,
      ]);
      if (outcome === "queued") {
        return this.#answers.json(202, { result: "queued", command: command.description });
      }
      switch (outcome.outcome) {
        case "written":
        case "unchanged":
          return this.#answers.json(200, { result: outcome.outcome, command: command.description });
        case "merged":
          return this.#answers.json(202, { result: "merged", command: command.description });
        case "failed":
          return this.#answers.error(
            502,
            `${command.description} failed: ${outcome.error ?? "the device refused it"}`,
          );
        case "stopped":
          return this.#answers.error(503, `${command.description} was dropped: ess is stopping`);
      }
    } catch (err) {
      return this.#answers.error(502, `${command.description} failed: ${errorText(err)}`);
    } finally {
      wait.cancel();
    }
  }
}

/** How many refused host names are logged as warnings; the rest only at debug level. */
const LOGGED_HOSTS = 8;

/**
 * The `Host` check of every request (see hosts.ts), with its log: one warning for each of the
 * first few names refused, the rest at debug level.
 */
export class HostFilter {
  readonly #isOwnHost: (host: string | null) => boolean;
  readonly #log: Logger;
  readonly #refused = new Set<string>();

  constructor(isOwnHost: (host: string | null) => boolean, log: Logger) {
    this.#isOwnHost = isOwnHost;
    this.#log = log;
  }

  /** Whether a request for `host` from `remote` is refused; says so in the log. */
  refuses(host: string | null, remote: string): boolean {
    if (this.#isOwnHost(host)) return false;
    const name = (host === null ? undefined : hostOfHeader(host)) ?? "(not a host name)";
    const first = !this.#refused.has(name) && this.#refused.size < LOGGED_HOSTS;
    if (first) this.#refused.add(name);
    (first ? this.#log.warning : this.#log.debug)(
      `refused a request from ${remote} for host ${preview(name, 80)}: not a name of this ` +
        `server (a web page rebinding its name to this machine?); if it is yours, add it ` +
        `with --allowed-hosts`,
    );
    return true;
  }
}
