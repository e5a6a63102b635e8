/**
 * The OpenAPI 3.1 description of `ess serve`, written from the route table.
 *
 * @module
 */
import { type Route, ROUTES } from "./routes.ts";

function operation(route: Route): Record<string, unknown> {
  const op: Record<string, unknown> = {
    operationId: route.id,
    summary: route.summary,
    description: route.description,
    tags: [route.tag],
    responses: Object.fromEntries(
      Object.entries(route.responses).map(([status, r]) => [
        status,
        r.content
          ? {
            description: r.description,
            content: { [r.content.type]: { schema: r.content.schema } },
          }
          : { description: r.description },
      ]),
    ),
  };
  if (route.params.length > 0) {
    op["parameters"] = route.params.map((p) => ({
      name: p.name,
      in: p.in,
      description: p.description,
      required: p.required,
      schema: p.schema,
    }));
  }
  if (route.body) {
    op["requestBody"] = {
      description: route.body.description,
      required: false,
      content: { [route.body.type]: { schema: route.body.schema } },
    };
  }
  if (route.bearer) op["security"] = [{ controlToken: [] }];
  return op;
}

/**
 * The OpenAPI document for a server of `routes`: {@link ROUTES} for one device, or those of a
 * site (site_routes.ts).
 *
 * @example
 * ```ts
 * import { equal, ok } from "node:assert/strict";
 * const doc = openApiDocument("1.2.3");
 * equal(doc.openapi, "3.1.0");
 * ok("/api/state" in doc.paths);
 * ```
 */
export function openApiDocument(
  version: string,
  routes: readonly Route[] = ROUTES,
): { openapi: string; paths: Record<string, Record<string, unknown>> } & Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    (paths[route.path] ??= {})[route.method.toLowerCase()] = operation(route);
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "ess serve",
      version,
      summary: "A local dashboard, JSON/SSE API and Prometheus metrics for an LG ESS.",
      description: "Keep it on your LAN. Controls need the token set with --control-token.",
    },
    tags: [
      { name: "dashboard", description: "The page and its embedded assets." },
      { name: "api", description: "JSON, events and controls." },
      { name: "metrics", description: "Prometheus." },
    ],
    paths,
    components: {
      securitySchemes: {
        controlToken: {
          type: "http",
          scheme: "bearer",
          description: "The token given with --control-token (or ESS_CONTROL_TOKEN).",
        },
      },
    },
  };
}
