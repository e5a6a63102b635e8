/**
 * Every route `ess serve` answers, in one table: the server dispatches on it and the OpenAPI
 * document is written from it, so the two cannot drift apart.
 *
 * @module
 */
import { GRAPH_DEVICES, GRAPH_SPANS } from "../device/states.ts";
import { CONTROL_NAMES } from "../device/controls.ts";

/** What a route is, for the server's dispatch. */
export type RouteId =
  | "page"
  | "script"
  | "chart"
  | "style"
  | "icon"
  | "surplus"
  | "site"
  | "state"
  | "events"
  | "info"
  | "graph"
  | "control"
  | "metrics"
  | "openapi"
  | "health";

/** A JSON Schema fragment, as OpenAPI 3.1 takes it. */
export type Schema = { [key: string]: unknown };

/** A path or query parameter. */
export interface RouteParam {
  name: string;
  in: "path" | "query";
  description: string;
  required: boolean;
  schema: Schema;
}

/** One answer a route can give. */
export interface RouteResponse {
  description: string;
  /** Content type and schema of the body; none for an empty body. */
  content?: { type: string; schema: Schema };
}

/** One route. */
export interface Route {
  id: RouteId;
  method: "GET" | "POST";
  /** The path, with `{name}` for path parameters (OpenAPI's template form). */
  path: string;
  summary: string;
  description: string;
  /** Where the route belongs in the docs. */
  tag: "dashboard" | "api" | "metrics";
  params: readonly RouteParam[];
  /** The body a POST takes. */
  body?: { type: string; description: string; schema: Schema };
  /** Whether the route needs the control token. */
  bearer?: boolean;
  responses: Readonly<Record<string, RouteResponse>>;
}

/** The body of an error answer. */
export const ERROR: Schema = {
  type: "object",
  properties: { error: { type: "string" } },
  required: ["error"],
};
/** An error answer, as a route lists it. */
export const error = (description: string): RouteResponse => ({
  description,
  content: { type: "application/json", schema: ERROR },
});
const text = (type: string, description: string): RouteResponse => ({
  description,
  content: { type, schema: { type: "string" } },
});

/** A device answer: objects of strings (Home 8/10) or numbers (Home 15), as the device sent them. */
const DEVICE_TREE: Schema = { type: "object", additionalProperties: true };

/** The body of `/api/state` and of each `state` event (of a site: each device's). */
export const STATE_SCHEMA: Schema = {
  type: "object",
  properties: {
    lastSuccess: {
      type: ["string", "null"],
      format: "date-time",
      description: "When the device last answered a poll.",
    },
    up: {
      type: ["boolean", "null"],
      description: "Whether the device counts as reachable; null before the first poll.",
    },
    age: {
      type: ["number", "null"],
      description: "Seconds since the device last answered a poll.",
    },
    error: { type: "string", description: "Why the device counts as unreachable." },
    reading: {
      type: "object",
      description: "The answers normalised, the same on every model: `family`, `model`, " +
        "`serial`, `power` (`pvW`, `loadW`, `batteryW` positive while discharging, `gridW` " +
        "positive while buying), `socPct`, `pvStrings`, `grid` (`frequencyHz`, `phases`), " +
        "`energy` (Wh today and this month, with their `source`), `status` (codes as " +
        "`{code, word}`), `settings`, `versions`. A figure the model lacks is absent.",
    },
    controls: {
      type: "object",
      additionalProperties: {
        type: "object",
        properties: {
          now: { type: "string" },
          options: { type: "array", items: { type: "string" } },
        },
        required: ["now"],
      },
      description: "The controls this firmware has, by name, each with its setting now " +
        "(`on`/`off`, an option or a number) and, for the charge strategy, the options the " +
        "firmware accepts.",
    },
    summary: {
      type: "object",
      additionalProperties: { type: "number" },
      description: "The main figures in base units, named like the Prometheus metrics without " +
        "`ess_`: `pv_power_watts`, `battery_power_watts` (positive: discharging), " +
        "`grid_power_watts` (positive: buying), `battery_soc_ratio`, `pv_generation_today_joules`, ...",
    },
    surplus: {
      type: "object",
      description: "The spare solar power and the switching rules (docs/surplus.md): `watts` " +
        "(averaged; null while unknown), `instantWatts`, `failSafe`, `prioritySoc`, " +
        "`reserveWatts`, `windowSeconds`, and `rules`, each with `name`, `on`, `reason` (a word: " +
        "`on-delay`, `min-on`, `offline`, ...), `why` (in words), `availableWatts`, `changedAt`, " +
        "`settings` and `switchTopic`.",
    },
    home: DEVICE_TREE,
    common: DEVICE_TREE,
    batt: DEVICE_TREE,
    systeminfo: DEVICE_TREE,
  },
  required: ["lastSuccess", "up", "age", "reading", "controls", "summary"],
};

const DATE_PATTERN = "^\\d{4}-\\d{2}-\\d{2}$";

/** The routes, in the order the docs list them. */
export const ROUTES: readonly Route[] = [
  {
    id: "page",
    method: "GET",
    path: "/",
    summary: "The dashboard",
    description: "A single page: live power flow, battery, today's energy, modes, history " +
      "charts and, with a control token, the controls. No outside resources.",
    tag: "dashboard",
    params: [],
    responses: { "200": text("text/html; charset=utf-8", "The page.") },
  },
  {
    id: "script",
    method: "GET",
    path: "/app.js",
    summary: "The dashboard's script",
    description: "Embedded in ess.",
    tag: "dashboard",
    params: [],
    responses: { "200": text("text/javascript; charset=utf-8", "The script.") },
  },
  {
    id: "chart",
    method: "GET",
    path: "/chart.js",
    summary: "The dashboard's chart drawing",
    description: "Embedded in ess.",
    tag: "dashboard",
    params: [],
    responses: { "200": text("text/javascript; charset=utf-8", "The script.") },
  },
  {
    id: "surplus",
    method: "GET",
    path: "/surplus.js",
    summary: "The dashboard's surplus card",
    description: "Embedded in ess.",
    tag: "dashboard",
    params: [],
    responses: { "200": text("text/javascript; charset=utf-8", "The script.") },
  },
  {
    id: "site",
    method: "GET",
    path: "/site.js",
    summary: "The dashboard's site view",
    description: "Embedded in ess: the view of the devices' sum and the switcher between the " +
      "devices, used with [device NAME] sections.",
    tag: "dashboard",
    params: [],
    responses: { "200": text("text/javascript; charset=utf-8", "The script.") },
  },
  {
    id: "style",
    method: "GET",
    path: "/app.css",
    summary: "The dashboard's style sheet",
    description: "Embedded in ess.",
    tag: "dashboard",
    params: [],
    responses: { "200": text("text/css; charset=utf-8", "The style sheet.") },
  },
  {
    id: "icon",
    method: "GET",
    path: "/icon.svg",
    summary: "The dashboard's icon",
    description: "Embedded in ess.",
    tag: "dashboard",
    params: [],
    responses: { "200": text("image/svg+xml", "The icon.") },
  },
  {
    id: "state",
    method: "GET",
    path: "/api/state",
    summary: "The device's latest answers",
    description: "`home`, `common`, the `batt` settings and `systeminfo` as `ess data --format " +
      "json` prints them, with the time of the last successful poll, their normalised reading, " +
      "the controls the firmware has, and a summary in base units.",
    tag: "api",
    params: [],
    responses: {
      "200": {
        description: "The latest state.",
        content: { type: "application/json", schema: STATE_SCHEMA },
      },
    },
  },
  {
    id: "events",
    method: "GET",
    path: "/api/events",
    summary: "The state as Server-Sent Events",
    description: "One `state` event with the `/api/state` body at once and after every poll, " +
      "and a `: keep-alive` comment every 15 s. A client that does not keep up is disconnected; " +
      "EventSource reconnects by itself.",
    tag: "api",
    params: [],
    responses: {
      "200": text("text/event-stream", "The event stream."),
      "503": error("Too many event streams are open, or ess is stopping."),
    },
  },
  {
    id: "info",
    method: "GET",
    path: "/api/info",
    summary: "What this server offers",
    description: "The ess version, the poll interval, and whether controls are enabled (a " +
      "token is configured) with the controls and the values each takes.",
    tag: "api",
    params: [],
    responses: {
      "200": {
        description: "Server facts.",
        content: {
          type: "application/json",
          schema: {
            type: "object",
            properties: {
              version: { type: "string" },
              intervalSeconds: { type: ["number", "null"] },
              controls: { type: "boolean" },
              controlList: { type: "array", items: { type: "object" } },
            },
            required: ["version", "controls", "controlList"],
          },
        },
      },
    },
  },
  {
    id: "graph",
    method: "GET",
    path: "/api/graph/{device}/{span}",
    summary: "A statistics graph",
    description: "The device's graph for the day, week, month or year that contains `date`, " +
      "as `ess graph --format json` prints it. Day rows are 15 minutes, week and month rows " +
      "days, year rows months; energy in Wh.",
    tag: "api",
    params: [
      {
        name: "device",
        in: "path",
        description: "What the graph shows.",
        required: true,
        schema: { type: "string", enum: [...GRAPH_DEVICES] },
      },
      {
        name: "span",
        in: "path",
        description: "How much time the graph covers.",
        required: true,
        schema: { type: "string", enum: [...GRAPH_SPANS] },
      },
      {
        name: "date",
        in: "query",
        description: "A day in the span, YYYY-MM-DD, from 2000-01-01 to 2099-12-31; default " +
          "today (the server's local date).",
        required: false,
        schema: { type: "string", pattern: DATE_PATTERN },
      },
    ],
    responses: {
      "200": {
        description: "The graph.",
        content: {
          type: "application/json",
          schema: {
            type: "object",
            properties: {
              loginfo: { type: "array", items: { type: "object", additionalProperties: true } },
            },
            required: ["loginfo"],
          },
        },
      },
      "400": error("A date that is not YYYY-MM-DD, not a real day, or outside 2000 to 2099."),
      "404": error("No such device or span."),
      "502": error("The device could not be read."),
      "503": error("Too many graph requests at once, or in the last minute."),
      "504": error("The device did not answer in time."),
    },
  },
  {
    id: "control",
    method: "POST",
    path: "/api/control/{name}",
    summary: "Sends a control command",
    description: "The body takes the same words as the MQTT control topics (`on`, `off`, " +
      "`true`, `start`, `fast_charge`, `20`, ...). Commands for one control coalesce and are " +
      "spaced like the bridge's. Needs `Authorization: Bearer <token>`; without a configured " +
      "token every control answers 403. Only `text/plain` bodies (or none) are taken, and a " +
      "browser request from another origin is refused.",
    tag: "api",
    params: [{
      name: "name",
      in: "path",
      description: "The control.",
      required: true,
      schema: { type: "string", enum: [...CONTROL_NAMES] },
    }],
    body: {
      type: "text/plain",
      description: "The command, at most 1 KiB: `on`/`off` and friends, `start`/`stop`, a " +
        "charge strategy, or a backup reserve percentage.",
      schema: { type: "string", maxLength: 1024 },
    },
    bearer: true,
    responses: {
      "200": {
        description: "The command was written to the device and read back (`written`), or " +
          "the device already had that setting (`unchanged`).",
        content: {
          type: "application/json",
          schema: {
            type: "object",
            properties: { result: { type: "string" }, command: { type: "string" } },
            required: ["result"],
          },
        },
      },
      "202": {
        description: "Still waiting for its turn (`queued`: it goes out when the control's " +
          "spacing allows), or replaced by a later command for the same control (`merged`).",
        content: {
          type: "application/json",
          schema: { type: "object", properties: { result: { type: "string" } } },
        },
      },
      "400": error("The body is not a valid command for this control."),
      "401": error("Missing or wrong token."),
      "403": error(
        "Controls are off (no token configured), or the request came from another " +
          "origin.",
      ),
      "404": error("No such control."),
      "408": error("The body did not arrive within 5 s."),
      "413": error("The body is too large."),
      "415": error("The body is not text/plain."),
      "502": error("The device refused or could not be reached."),
      "503": error("Too many control requests at once, or ess is stopping."),
    },
  },
  {
    id: "metrics",
    method: "GET",
    path: "/metrics",
    summary: "Prometheus metrics",
    description: "Text exposition 0.0.4; every series has a `serial` label.",
    tag: "metrics",
    params: [],
    responses: { "200": text("text/plain; version=0.0.4; charset=utf-8", "The metrics.") },
  },
  {
    id: "health",
    method: "GET",
    path: "/healthz",
    summary: "Whether ess is running",
    description: "200 while ess serves, whatever the device's state (ess rides out device " +
      "outages itself, so a restart would not help): for `ess health`, a container's health " +
      "check and the Home Assistant add-on's watchdog. The only route open to every client " +
      "when `--allowed-clients` is set; it tells nothing about the device but `up`.",
    tag: "api",
    params: [],
    responses: {
      "200": {
        description: "ess is running.",
        content: {
          type: "application/json",
          schema: {
            type: "object",
            properties: {
              status: { type: "string", enum: ["ok"] },
              up: { type: ["boolean", "null"] },
              devices: {
                type: "object",
                description: "With several devices: whether each is up, by name.",
                additionalProperties: { type: ["boolean", "null"] },
              },
            },
            required: ["status", "up"],
          },
        },
      },
    },
  },
  {
    id: "openapi",
    method: "GET",
    path: "/api/openapi.json",
    summary: "This description",
    description: "OpenAPI 3.1.",
    tag: "api",
    params: [],
    responses: {
      "200": {
        description: "The OpenAPI document.",
        content: { type: "application/json", schema: { type: "object" } },
      },
    },
  },
];

/** A route and the values of its path parameters. */
export interface RouteMatch {
  route: Route;
  params: Record<string, string>;
}

/**
 * A function that finds, among `routes`, the routes at a path, whatever their method, with
 * their path parameters (still percent-encoded).
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * const [hit] = routeMatcher(ROUTES)("/api/control/winter_mode");
 * deepEqual(hit?.params, { name: "winter_mode" });
 * ```
 */
export function routeMatcher(routes: readonly Route[]): (pathname: string) => RouteMatch[] {
  const matchers = routes.map((route) => {
    const names: string[] = [];
    // Literal parts are escaped: the `.` of `/app.js` must not match any character.
    const source = route.path.split(/\{(\w+)\}/).map((part, i) => {
      if (i % 2 === 0) return part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      names.push(part);
      return "([^/]+)";
    }).join("");
    return { route, names, regex: new RegExp(`^${source}$`) };
  });
  return (pathname) => {
    const matches: RouteMatch[] = [];
    for (const { route, names, regex } of matchers) {
      const m = regex.exec(pathname);
      if (!m) continue;
      const params: Record<string, string> = {};
      names.forEach((name, i) => params[name] = m[i + 1]!);
      matches.push({ route, params });
    }
    return matches;
  };
}

/**
 * The routes at `pathname` among {@link ROUTES} (one device's), whatever their method, with
 * their path parameters (still percent-encoded).
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * const [hit] = matchRoutes("/api/graph/pv/day");
 * deepEqual(hit?.params, { device: "pv", span: "day" });
 * ```
 */
export const matchRoutes: (pathname: string) => RouteMatch[] = routeMatcher(ROUTES);
