import assert from "@std/assert";
import denoJson from "../deno.json" with { type: "json" };

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const PERMISSIONS = Deno.readTextFileSync(new URL("../permissions.txt", import.meta.url)).trim();

Deno.test("permissions.txt is the one permission list of the ess and compile tasks", () => {
  const tasks = denoJson.tasks as Record<string, { command: string }>;
  for (const name of ["ess", "demo", "compile"]) {
    assert.ok(tasks[name]!.command.includes("$(cat permissions.txt)"), name);
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
