/**
 * The dashboard under a path prefix, as Home Assistant's ingress serves it
 * (`/api/hassio_ingress/<token>/`): every URL the page and its scripts use is relative, so the
 * browser resolves each one under the prefix.
 */
import { deepEqual } from "node:assert/strict";
import { ASSETS } from "../lib/serve/_assets.ts";

/** Every URL in an attribute, an import, a fetch or an EventSource of `text`. */
function urlsOf(text: string): string[] {
  const patterns = [
    /\b(?:href|src)="([^"]*)"/g,
    /\bfrom\s+"([^"]*)"/g,
    /\b(?:fetch|EventSource)\(\s*["`]([^"`$]*)/g,
  ];
  return patterns.flatMap((p) => [...text.matchAll(p)].map((m) => m[1]!));
}

Deno.test("the dashboard's page and scripts use relative URLs only", () => {
  for (const name of ["page", "script", "chart", "surplus", "site"] as const) {
    const absolute = urlsOf(ASSETS[name]).filter((url) => /^(\/|[a-z]+:)/i.test(url));
    deepEqual(absolute, [], `${name}: absolute URLs break under an ingress path`);
  }
});
