import assert from "node:assert/strict";
import { COMMANDS } from "../commands/_registry.ts";
import denoJson from "../deno.json" with { type: "json" };

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const PERMISSIONS = Deno.readTextFileSync(new URL("../run-flags.txt", import.meta.url)).trim();

Deno.test("run-flags.txt is the one flag list of the ess and compile tasks", () => {
  const tasks = denoJson.tasks as Record<string, { command: string }>;
  for (const name of ["ess", "demo", "compile"]) {
    assert.ok(tasks[name]!.command.includes("$(cat run-flags.txt)"), name);
    assert.doesNotMatch(tasks[name]!.command, /--allow-|-A\b|--allow-all/, name);
  }
  assert.doesNotMatch(PERMISSIONS, /--allow-all|-A\b|--allow-write|--allow-run|--allow-ffi/);
  for (const target of ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"]) {
    assert.ok(tasks["compile"]!.command.includes(`--target ${target} --output dist/ess-${target}`));
  }
});

Deno.test("a permission the binary lacks ends in one line naming it", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-prompt",
      "--allow-read",
      "--allow-env",
      MAIN,
      "data",
      "--host",
      "127.0.0.1:9",
      "--password",
      "x",
    ],
    env: {
      NO_COLOR: "1",
      HOME: "/nonexistent",
      DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 1);
  assert.equal(stderr, 'ess: missing permission: Requires net access to "127.0.0.1:9"\n');
});

/** The variables `--allow-env=` names; an entry ending in `*` stands for a prefix, as in Deno. */
function allowedEnv(): string[] {
  const flags = PERMISSIONS.split(/\s+/).filter((f) => f.startsWith("--allow-env"));
  assert.equal(flags.length, 1, "one --allow-env flag");
  assert.match(flags[0]!, /^--allow-env=./, "--allow-env names what ess reads");
  return flags[0]!.slice("--allow-env=".length).split(",");
}

function covered(name: string, allowed: readonly string[]): boolean {
  return allowed.some((a) => a.endsWith("*") ? name.startsWith(a.slice(0, -1)) : name === a);
}

Deno.test("--allow-env in run-flags.txt covers every variable ess reads", async (t) => {
  const allowed = allowedEnv();

  await t.step(
    "should cover the environment variable of every option of every command",
    async () => {
      for (const [name, entry] of Object.entries(COMMANDS)) {
        for (const spec of (await entry.load()).default.options) {
          if (spec.env === undefined) continue;
          assert.ok(covered(spec.env, allowed), `ess ${name} --${spec.name}: ${spec.env}`);
        }
      }
    },
  );

  await t.step("should cover every variable main.ts, commands/ and lib/ read by name", async () => {
    const root = new URL("../", import.meta.url);
    const files = [new URL("main.ts", root)];
    const walk = async (dir: string): Promise<void> => {
      for await (const entry of Deno.readDir(new URL(dir, root))) {
        if (entry.isDirectory) await walk(`${dir}${entry.name}/`);
        else if (entry.name.endsWith(".ts")) files.push(new URL(`${dir}${entry.name}`, root));
      }
    };
    for (const dir of ["commands/", "lib/"]) await walk(dir);
    const read = new Set<string>();
    for (const file of files) {
      const source = await Deno.readTextFile(file);
      for (const m of source.matchAll(/(?:\bio\.env|Deno\.env\.get)\(\s*"([^"]+)"/g)) {
        read.add(m[1]!);
      }
    }
    assert.ok(read.has("HOME") && read.has("ESS_CONFIG"), [...read].join(", "));
    for (const name of read) assert.ok(covered(name, allowed), name);
  });
});
