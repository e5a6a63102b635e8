/**
 * The code's shape as README.md's Development section describes it, checked: data flows one way (`main.ts` → `commands/` →
 * `lib/`), no module imports another in a loop, no product file passes 600 lines, and every
 * library is imported under its own name.
 *
 * @module
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { fileURLToPath } from "node:url";
import denoJson from "../deno.json" with { type: "json" };

const ROOT = new URL("../", import.meta.url);

interface InfoModule {
  specifier: string;
  dependencies?: { code?: { specifier: string }; type?: { specifier: string } }[];
}

/** The project's own modules reachable from `main.ts`, with the modules each one imports. */
async function moduleGraph(): Promise<Map<string, string[]>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "main.ts"],
    cwd: fileURLToPath(ROOT),
    stdout: "piped",
    stderr: "piped",
  }).output();
  equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const { modules } = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: InfoModule[];
  };
  const own = (s: string) => s.startsWith(ROOT.href) ? s.slice(ROOT.href.length) : undefined;
  const graph = new Map<string, string[]>();
  for (const m of modules) {
    const name = own(m.specifier);
    if (name === undefined || !name.endsWith(".ts")) continue;
    const deps = (m.dependencies ?? []).flatMap((d) => [d.code?.specifier, d.type?.specifier])
      .map((s) => s === undefined ? undefined : own(s))
      .filter((s): s is string => s !== undefined && s.endsWith(".ts"));
    graph.set(name, [...new Set(deps)]);
  }
  return graph;
}

/** Every loop in the graph, as the modules on it (Tarjan's strongly connected components). */
function cycles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const indices = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    indices.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!indices.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, indices.get(w)!));
    }
    if (low.get(v) === indices.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || graph.get(v)?.includes(v)) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!indices.has(v)) visit(v);
  return found;
}

async function productFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(new URL(dir, ROOT))) {
    const path = `${dir}${entry.name}`;
    if (entry.isDirectory) files.push(...await productFiles(`${path}/`));
    else if (entry.name.endsWith(".ts")) files.push(path);
  }
  return files;
}

Deno.test("the module graph", async (t) => {
  const graph = await moduleGraph();

  await t.step("should reach every command from main.ts", () => {
    ok(graph.has("commands/mqtt.ts") && graph.has("lib/mqtt/bridge.ts"), [...graph.keys()].join());
  });

  await t.step("should have no import cycle (static, dynamic or type-only)", () => {
    deepEqual(cycles(graph), []);
  });

  await t.step("should flow one way: lib/ never imports commands/ or main.ts", () => {
    for (const [module, deps] of graph) {
      if (!module.startsWith("lib/")) continue;
      deepEqual(deps.filter((d) => !d.startsWith("lib/") && d !== "deno.json"), [], module);
    }
  });

  await t.step("should let no command import another command", () => {
    for (const [module, deps] of graph) {
      // The registry is the dispatcher's table of commands, loaded lazily by literal paths.
      if (!module.startsWith("commands/") || module === "commands/_registry.ts") continue;
      const commands = deps.filter((d) => /^commands\/[^_]/.test(d));
      deepEqual(commands, [], module);
    }
  });
});

Deno.test("product files", async (t) => {
  await t.step("should stay under 600 lines each", async () => {
    for (
      const file of ["main.ts", ...await productFiles("commands/"), ...await productFiles("lib/")]
    ) {
      const lines = (await Deno.readTextFile(new URL(file, ROOT))).split("\n").length;
      ok(lines <= 600, `${file} has ${lines} lines`);
    }
  });
});

Deno.test("the import map", async (t) => {
  await t.step("should name each library as itself, never as another package", () => {
    for (const [name, target] of Object.entries(denoJson.imports)) {
      const own = [`npm:${name}`, `jsr:${name}`, `node:${name}`];
      ok(
        own.some((prefix) => target === prefix || target.startsWith(`${prefix}@`)),
        `"${name}" points at "${target}"`,
      );
    }
  });
});
