/**
 * The routes of a server for a site (a config with `[device NAME]` sections): those of one
 * device ({@link ROUTES}), with the state and its events carrying every device, and graphs and
 * controls taking the device's name first in the path. Written from the one-device table, so
 * that what the two share cannot drift apart.
 *
 * @module
 */
import { GRAPH_DEVICES } from "../device/states.ts";
import { type Route, type RouteParam, ROUTES, type Schema, STATE_SCHEMA } from "./routes.ts";

/** The path parameter naming a device of the site, one of `names`. */
function deviceParam(names: readonly string[]): RouteParam {
  return {
    name: "device",
    in: "path",
    description: "The device: the NAME of its `[device NAME]` section.",
    required: true,
    schema: { type: "string", enum: [...names] },
  };
}

/** The body of `/api/state` of a site, each device's state in it as {@link STATE_SCHEMA}. */
function siteStateSchema(names: readonly string[]): Schema {
  return {
    type: "object",
    properties: {
      site: {
        type: "object",
        description: "The devices together.",
        properties: {
          up: {
            type: ["boolean", "null"],
            description: "Whether every device counts as reachable: false once one does " +
              "not, null until each has been polled.",
          },
          reading: {
            type: "object",
            description: "The devices that count as reachable, summed: `power` (`pvW`, " +
              "`loadW`, `batteryW`, `gridW` with the signs of a device's reading; a flow only " +
              "when every counted device has it), `socPct` (their mean), `energyTodayWh` (per " +
              "counter), `counted` and `missing` (the names summed and those left out).",
          },
          surplus: {
            type: "object",
            description: "The surplus of the whole site and its rules, where ess computes it " +
              "(as a device's `surplus`).",
          },
        },
        required: ["up", "reading"],
      },
      devices: {
        type: "object",
        description: "Each device's state, by name, as `/api/state` of one device has it.",
        properties: Object.fromEntries(names.map((name) => [name, STATE_SCHEMA])),
        additionalProperties: false,
      },
    },
    required: ["site", "devices"],
  };
}

/** How each route of one device changes for a site. */
function siteRoute(route: Route, names: readonly string[]): Route {
  switch (route.id) {
    case "state":
      return {
        ...route,
        summary: "Every device's latest answers, and their sum",
        description: "`site`: the devices summed, and `devices`: each device's state by name, " +
          "as `/api/state` of one device has it.",
        responses: {
          "200": {
            description: "The latest state of the site.",
            content: { type: "application/json", schema: siteStateSchema(names) },
          },
        },
      };
    case "events":
      return {
        ...route,
        description: "One `state` event with the `/api/state` body (the site and every " +
          "device) at once and after polls (those close together in one event), and a " +
          "`: keep-alive` comment every 15 s. A client that does not keep up is disconnected; " +
          "EventSource reconnects by itself.",
      };
    case "graph":
      return {
        ...route,
        path: "/api/graph/{device}/{graph}/{span}",
        description: `The graph of one device. ${route.description}`,
        params: [
          deviceParam(names),
          {
            name: "graph",
            in: "path",
            description: "What the graph shows.",
            required: true,
            schema: { type: "string", enum: [...GRAPH_DEVICES] },
          },
          ...route.params.filter((p) => p.name !== "device"),
        ],
        responses: {
          ...route.responses,
          "404": { ...route.responses["404"]!, description: "No such device, graph or span." },
        },
      };
    case "control":
      return {
        ...route,
        path: "/api/control/{device}/{name}",
        description: `Sends the command to that device only. ${route.description}`,
        params: [deviceParam(names), ...route.params],
        responses: {
          ...route.responses,
          "404": { ...route.responses["404"]!, description: "No such device or control." },
        },
      };
    case "metrics":
      return {
        ...route,
        description: "Text exposition 0.0.4; every series of a device has a `device` label " +
          "(its NAME) and a `serial` label. The site's surplus, where ess computes it, is " +
          "`ess_site_surplus_…`.",
      };
    case "health":
      return {
        ...route,
        description: route.description.replace(
          "but `up`.",
          "but `up`: whether every device counts as reachable.",
        ),
      };
    default:
      return route;
  }
}

/**
 * The routes of a server for the site whose devices are `names`.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * const paths = siteRoutes(["garage", "house"]).map((r) => r.path);
 * ok(paths.includes("/api/control/{device}/{name}"));
 * ok(!paths.includes("/api/control/{name}"));
 * ```
 */
export function siteRoutes(names: readonly string[]): Route[] {
  return ROUTES.map((route) => siteRoute(route, names));
}
