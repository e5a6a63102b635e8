/**
 * The HTTP server of `ess serve` (and `ess mqtt --listen`): the dashboard, `/api/state`,
 * `/api/events`, graphs, controls, `/metrics` and `/api/openapi.json`, over a
 * {@link ServeSource}. Nothing a client does can hold up polling: the server only reads
 * snapshots, event streams that back up are dropped, graph reads are shared, cached and capped,
 * and every wait has a time-out.
 *
 * @module
 */
import { errorText, EssError, UsageError } from "../errors.ts";
import { type Logger, silentLogger } from "../log.ts";
import { VERSION } from "../version.ts";
import { METRICS_CONTENT_TYPE } from "../export/prometheus.ts";
import { allowSameOriginFrames, AnswerRedactor, Answers } from "./_http.ts";
import { sseEvent, SseHub, StateEvents } from "./_sse.ts";
import { GraphCache } from "./_graph.ts";
import { CONTROL_LIST } from "./_controls.ts";
import { ASSETS } from "./_assets.ts";
import { type Listener, type ListenerLimits, listenHttp } from "./_listener.ts";
import { authority, type ListenAddress, tokenProblem } from "./listen.ts";
import { hostCheck, machineNames } from "./hosts.ts";
import { ControlEndpoint, GraphEndpoint, HostFilter } from "./_endpoints.ts";

export { parseQueryDate } from "./_endpoints.ts";
import { matchRoutes, type RouteId, type RouteMatch, routeMatcher, ROUTES } from "./routes.ts";
import { siteRoutes } from "./site_routes.ts";
import { openApiDocument } from "./openapi.ts";
import { servedSnapshot } from "./state.ts";
import { isSiteSource, type ServeSnapshot, type ServeSource, type SiteSource } from "./source.ts";
import { deviceView, type ServedView, siteView } from "./_view.ts";

/** The server's limits; every one has a default. */
export interface ServeLimits extends ListenerLimits {
  /** Open event streams at most (503 beyond). */
  maxEventStreams: number;
  /** Time between SSE keep-alive comments, in ms. */
  keepAliveMs: number;
  /**
   * Of a site: the least time between two state events, in ms; the polls of the devices in
   * between go out together in the next one.
   */
  eventGapMs: number;
  /** Bytes queued for one event stream before its client is dropped. */
  eventQueueBytes: number;
  /** Longest URL taken, in characters (414 beyond). */
  maxUrlLength: number;
  /** Largest control body, in bytes (413 beyond). */
  maxBodyBytes: number;
  /** How long a client may take to send a control body, in ms (408 beyond). */
  bodyTimeoutMs: number;
  /** How long a control request waits for its command to be written (202 after). */
  controlWaitMs: number;
  /** Control requests waiting at once at most (503 beyond). */
  maxControlsWaiting: number;
  /** How long a graph request waits for the device, in ms (504 after). */
  graphTimeoutMs: number;
  /** How long a graph answer is served again, in ms. */
  graphCacheMs: number;
  /** Different graphs read from the device at once at most (503 beyond). */
  maxGraphReads: number;
  /** Graphs read from the device in any minute at most (503 beyond; kept answers still come). */
  maxGraphReadsPerMinute: number;
}

/** The defaults of {@link ServeLimits}. */
export const DEFAULT_LIMITS: Readonly<ServeLimits> = {
  maxConnections: 128,
  headersTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  writeTimeoutMs: 30_000,
  maxEventStreams: 32,
  keepAliveMs: 15_000,
  eventGapMs: 500,
  eventQueueBytes: 256 * 1024,
  maxUrlLength: 2048,
  maxBodyBytes: 1024,
  bodyTimeoutMs: 5_000,
  controlWaitMs: 10_000,
  maxControlsWaiting: 8,
  graphTimeoutMs: 30_000,
  graphCacheMs: 60_000,
  maxGraphReads: 2,
  maxGraphReadsPerMinute: 30,
};

/** What the server serves, and how. */
export interface ServeOptions {
  /**
   * The device side: snapshots, poll events, graphs, controls; of a site, one such source per
   * device, by name (the state, the metrics, graphs and controls then name the device).
   */
  source: ServeSource | SiteSource;
  /**
   * The token controls need, at least `MIN_TOKEN_LENGTH` (listen.ts) characters; without one, every
   * control answers 403.
   */
  controlToken?: string | undefined;
  /** The poll interval, in seconds, for the dashboard. */
  intervalSeconds?: number;
  /**
   * Where requests and failures are logged. Its redactor also cleans every answer (the token
   * is kept out in any case): the CLI's holds the device and MQTT passwords and the token, and
   * the device client adds each auth key it receives.
   */
  logger?: Logger;
  /**
   * The IP addresses requests are taken from (`172.30.32.2`, the Supervisor's ingress proxy, in
   * the Home Assistant add-on); every other client gets 403, but for `/healthz`. Default: all.
   */
  allowedClients?: readonly string[] | undefined;
  /**
   * Host names the server answers to besides its own (`localhost`, IP addresses, the listen
   * name and this machine's names): the names of a reverse proxy in front of it. `*` answers
   * every name. Any other `Host` gets 421 and no data (DNS rebinding; see hosts.ts).
   */
  allowedHosts?: readonly string[];
  /** This machine's names (default: from its host name, see `machineNames`). */
  machineNames?: readonly string[];
  /** The clock, in ms since the epoch. */
  now?: () => number;
  limits?: Partial<ServeLimits>;
}

/** An IP address as {@link clientAddress} writes it: lowercase, an IPv4-mapped one as IPv4. */
function normalAddress(ip: string): string {
  return ip.toLowerCase().replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, "$1");
}

/**
 * The IP address of a client named `host:port` (`[v6]:port` for IPv6), without an IPv4-mapped
 * IPv6 prefix, so that `::ffff:172.30.32.2` is `172.30.32.2`.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(clientAddress("[::ffff:172.30.32.2]:50122"), "172.30.32.2");
 * equal(clientAddress("[::1]:8080"), "::1");
 * ```
 */
export function clientAddress(remote: string): string {
  return normalAddress(remote.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1"));
}

/** A request handler and what it holds. */
export interface ServeHandler {
  /** Answers one request; `remote` names the client for the log. */
  handle(request: Request, remote: string): Promise<Response>;
  /** Ends every event stream and stops listening to the source. */
  close(): void;
}

const JSON_TEXT = "application/json";

/**
 * The route for `method` on `path` among those `match` finds, with its parameters decoded; or
 * the answer when there is none: 404 for a path no route has, 405 (with `Allow`) for a method
 * it does not take, 400 for parameters that are not valid percent-encoding.
 */
function findRoute(
  method: string,
  path: string,
  answers: Answers,
  match: (path: string) => RouteMatch[],
): { id: RouteId; params: Record<string, string> } | Response {
  const matches = match(path);
  if (matches.length === 0) {
    const hint = match !== matchRoutes && matchRoutes(path).some((m) => m.route.params.length > 0)
      ? ": this ess serves several devices, name one first (/api/graph/{device}/…, " +
        "/api/control/{device}/…)"
      : "";
    return answers.error(404, `no such path: ${JSON.stringify(path.slice(0, 100))}${hint}`);
  }
  const wanted = method === "HEAD" ? "GET" : method;
  const found = matches.find((m) => m.route.method === wanted);
  if (!found) {
    const allow = [...new Set(matches.map((m) => m.route.method))].join(", ");
    return answers.error(405, `${method} is not allowed here: use ${allow}`, { allow });
  }
  try {
    const params = Object.fromEntries(
      Object.entries(found.params).map(([k, v]) => [k, decodeURIComponent(v)]),
    );
    return { id: found.route.id, params };
  } catch {
    return answers.error(400, "the path is not valid percent-encoding");
  }
}

/**
 * Builds the request handler; {@link startServer} puts it behind a socket listening on
 * `listenHost`. Throws a `UsageError` for a control token that `tokenProblem` refuses.
 */
export function createHandler(options: ServeOptions, listenHost = "localhost"): ServeHandler {
  const limits: ServeLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const log = options.logger ?? silentLogger;
  const now = options.now ?? Date.now;
  const token = options.controlToken === "" ? undefined : options.controlToken;
  const problem = token === undefined ? undefined : tokenProblem(token);
  if (problem !== undefined) throw new UsageError(problem);
  // The view, made just below with this redactor, tells it the secrets the devices echo.
  const redactor = new AnswerRedactor([token], () => view.echoed(), log.redactor);
  const served = new WeakMap<ServeSnapshot, ServeSnapshot>();
  /** A snapshot as the server may show it, redacted once per poll rather than once per answer. */
  const clean = (latest: ServeSnapshot): ServeSnapshot => {
    let answer = served.get(latest);
    if (!answer) served.set(latest, answer = servedSnapshot(latest, (v) => redactor.value(v)));
    return answer;
  };
  const { source } = options;
  const view: ServedView = isSiteSource(source)
    ? siteView(source, clean)
    : deviceView(source, clean);
  const names = view.names;
  const routes = names === undefined ? ROUTES : siteRoutes(names);
  const match = names === undefined ? matchRoutes : routeMatcher(routes);
  const answers = new Answers(redactor);
  const hub = new SseHub({
    maxClients: limits.maxEventStreams,
    keepAliveMs: limits.keepAliveMs,
    maxQueuedBytes: limits.eventQueueBytes,
    retryMs: 5_000,
  });
  const graphs = new GraphCache(
    async (device, span, date, from) =>
      redactor.json(await view.device(from)!.graph(device, span, date)),
    {
      ttlMs: limits.graphCacheMs,
      maxEntries: 64,
      maxChars: 4 * 1024 * 1024,
      maxInFlight: limits.maxGraphReads,
      maxReadsPerMinute: limits.maxGraphReadsPerMinute,
    },
    now,
  );
  const openapi = `${JSON.stringify(openApiDocument(VERSION, routes), null, 2)}\n`;
  const allowed = options.allowedClients && new Set(options.allowedClients.map(normalAddress));
  const hosts = new HostFilter(
    hostCheck({
      listenHost,
      machine: options.machineNames ?? machineNames(),
      allowed: options.allowedHosts ?? [],
    }),
    log,
  );
  const graph = new GraphEndpoint(graphs, answers, limits.graphTimeoutMs, now);
  const control = new ControlEndpoint({ token, limits, answers, log, now });

  const stateNow = () => view.stateText(now());
  const events = new StateEvents(
    hub,
    () => sseEvent("state", stateNow()),
    names === undefined ? 0 : limits.eventGapMs,
  );
  const unsubscribe = view.onPoll(() => events.polled());

  const info = `${
    JSON.stringify({
      version: VERSION,
      intervalSeconds: options.intervalSeconds ?? null,
      controls: token !== undefined,
      controlList: CONTROL_LIST,
    })
  }\n`;

  function openEvents(): Response {
    const first = sseEvent("state", stateNow());
    const stream = hub.open(first);
    if (stream === "closed") return answers.error(503, "ess is stopping");
    if (stream === "full") {
      return answers.error(503, `too many event streams (${limits.maxEventStreams}) are open`, {
        "retry-after": "30",
      });
    }
    return answers.stream(stream, "text/event-stream; charset=utf-8");
  }

  /** A path's device name is never repeated: only the names the server knows are. */
  function unknownDevice(): Response {
    return answers.error(404, `no such device: one of ${names?.join(", ")}`);
  }

  function route(
    id: RouteId,
    request: Request,
    params: Record<string, string>,
    url: URL,
    remote: string,
  ): Response | Promise<Response> {
    switch (id) {
      case "page":
        return answers.asset(ASSETS.page, "text/html; charset=utf-8");
      case "script":
        return answers.asset(ASSETS.script, "text/javascript; charset=utf-8");
      case "chart":
        return answers.asset(ASSETS.chart, "text/javascript; charset=utf-8");
      case "surplus":
        return answers.asset(ASSETS.surplus, "text/javascript; charset=utf-8");
      case "site":
        return answers.asset(ASSETS.site, "text/javascript; charset=utf-8");
      case "style":
        return answers.asset(ASSETS.style, "text/css; charset=utf-8");
      case "icon":
        return answers.asset(ASSETS.icon, "image/svg+xml");
      case "state":
        return answers.text(200, `${stateNow()}\n`, JSON_TEXT);
      case "events":
        return openEvents();
      case "info":
        return answers.text(200, info, JSON_TEXT);
      case "graph": {
        if (names === undefined) return graph.answer(params, url);
        const from = params["device"]!;
        if (!view.device(from)) return unknownDevice();
        return graph.answer({ device: params["graph"]!, span: params["span"]! }, url, from);
      }
      case "control": {
        const of = view.device(params["device"]);
        if (!of) return unknownDevice();
        return control.answer(request, of, params, remote, clientAddress(remote));
      }
      case "metrics":
        return answers.text(200, view.metricsText(now()), METRICS_CONTENT_TYPE);
      case "openapi":
        return answers.text(200, openapi, JSON_TEXT);
      case "health":
        return answers.json(200, {
          status: "ok",
          up: view.up() ?? null,
          // A site also says which of its devices are up, for `ess health`.
          ...(view.names === undefined ? {} : {
            devices: Object.fromEntries(
              view.names.map((name) => [name, view.device(name)?.snapshot().up ?? null]),
            ),
          }),
        });
    }
  }

  async function handle(request: Request, remote: string): Promise<Response> {
    if (hosts.refuses(request.headers.get("host"), remote)) {
      return answers.error(421, "this server does not answer to that host name");
    }
    if (request.url.length > limits.maxUrlLength) return answers.error(414, "the URL is too long");
    const url = new URL(request.url);
    if (allowed && !allowed.has(clientAddress(remote)) && url.pathname !== "/healthz") {
      log.debug(`${request.method} ${url.pathname} from ${remote} -> 403 (not an allowed client)`);
      return answers.error(403, "this server takes requests only from its allowed clients");
    }
    const found = findRoute(request.method, url.pathname, answers, match);
    if (found instanceof Response) return found;
    const response = await route(found.id, request, found.params, url, remote);
    if (request.headers.has("x-ingress-path")) allowSameOriginFrames(response.headers);
    log.debug(`${request.method} ${url.pathname} from ${remote} -> ${response.status}`);
    if (request.method === "HEAD") {
      await response.body?.cancel();
      return new Response(null, { status: response.status, headers: response.headers });
    }
    return response;
  }

  return {
    handle,
    close() {
      unsubscribe();
      events.close();
      hub.closeAll();
    },
  };
}

/** A server that listens. */
export interface RunningServer {
  /** The address it listens on (the port picked, if asked for port 0). */
  readonly address: ListenAddress;
  /** `http://host:port`. */
  readonly url: string;
  /** Ends every event stream, stops listening and waits for the requests under way. */
  close(): Promise<void>;
}

/**
 * Starts the server on `address`. It prints nothing: the command says where it listens (and,
 * off loopback, who can reach it; see `exposureNotice`).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * const source = {
 *   snapshot: () => ({ states: { home: { statistics: { load_power: "376" } } }, lastSuccess: 0, up: true }),
 *   onPoll: () => () => {},
 *   graph: () => Promise.reject(new Error("no graphs in this example")),
 *   control: () => Promise.resolve({ outcome: "written" as const }),
 * };
 * const server = await startServer({ hostname: "127.0.0.1", port: 0 }, { source });
 * const answer = await fetch(new URL("/api/state", server.url));
 * equal((await answer.json()).home.statistics.load_power, "376");
 * await server.close();
 * ```
 */
export async function startServer(
  address: ListenAddress,
  options: ServeOptions,
): Promise<RunningServer> {
  const log = options.logger ?? silentLogger;
  const limits: ServeLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const handler = createHandler(options, address.hostname);
  let listener: Listener;
  try {
    listener = await listenHttp(
      address,
      limits,
      (request, remote) => handler.handle(request, remote),
      (err) => log.error(`serving a request failed: ${errorText(err)}`),
    );
  } catch (err) {
    handler.close();
    const code = (err as { code?: unknown }).code;
    const hint = code === "EADDRINUSE"
      ? "another program uses that port (another ess with the same listen in its config " +
        "file, perhaps): pick another with --listen"
      : code === "EACCES"
      ? "ports below 1024 need privileges: pick a higher port"
      : "check the address";
    throw new EssError(
      `Cannot listen on ${authority(address)}: ${errorText(err)}; ${hint}`,
      { cause: err },
    );
  }
  return {
    address: listener.address,
    url: `http://${authority(listener.address)}`,
    async close() {
      handler.close();
      await listener.close();
    },
  };
}
