/**
 * Wrong control tokens: each one makes its client wait longer before the next is looked at, and
 * a burst of them is one warning in the log. A token that no request could ever match (blanks,
 * over 1024 characters) is refused when ess starts.
 */
import assert from "node:assert/strict";
import { startServer } from "../lib/serve/server.ts";
import { MAX_TOKEN_DELAY_MS } from "../lib/serve/_token_guard.ts";
import { createLogger } from "../lib/log.ts";
import { FakeSource } from "./_serve_source.ts";
import { post } from "./_serve_http.ts";
import { runCli } from "./_cli.ts";

const TOKEN = "s3cret-control-token";

Deno.test("ess serve makes a client that sends wrong tokens wait", async (t) => {
  let clock = 1_000_000;
  const lines: string[] = [];
  const source = new FakeSource();
  const server = await startServer({ hostname: "127.0.0.1", port: 0 }, {
    source,
    controlToken: TOKEN,
    now: () => clock,
    logger: createLogger("info", (line) => lines.push(line)),
  });
  const control = `${server.url}/api/control/winter_mode`;
  const send = async (token: string) => {
    const res = await post(control, "on", { authorization: `Bearer ${token}` });
    await res.body?.cancel();
    return [res.status, res.headers.get("retry-after")] as const;
  };
  try {
    await t.step("should answer 401, then 429 until the wait is over", async () => {
      assert.deepEqual(await send("guess-0000000000000"), [401, null]);
      assert.deepEqual(await send("guess-0000000000001"), [429, "1"]);
      assert.deepEqual(await send(TOKEN), [429, "1"], "not even the right one is looked at");
      clock += 1000;
      assert.deepEqual(await send("guess-0000000000002"), [401, null]);
      assert.deepEqual(await send("guess-0000000000003"), [429, "2"]);
    });
    await t.step(`should double the wait up to ${MAX_TOKEN_DELAY_MS / 1000} s`, async () => {
      const waits: (string | null)[] = [];
      for (let i = 0; i < 8; i++) {
        clock += MAX_TOKEN_DELAY_MS;
        assert.equal((await send(`guess-${i}-aaaaaaaaaaaaa`))[0], 401);
        waits.push((await send(TOKEN))[1]);
      }
      assert.deepEqual(waits, ["4", "8", "16", "32", "60", "60", "60", "60"]);
    });
    await t.step("should log one warning for the whole burst", () => {
      const warnings = lines.filter((line) => line.startsWith("warning:"));
      assert.deepEqual(warnings, [
        "warning: wrong control token from 127.0.0.1: each further wrong one makes it wait " +
        "longer, up to 60 s",
      ]);
    });
    await t.step("should take the right token once the wait is over, and forget", async () => {
      clock += MAX_TOKEN_DELAY_MS;
      assert.equal((await send(TOKEN))[0], 200);
      assert.equal((await send("guess-after-success-00"))[0], 401);
      assert.deepEqual(await send(TOKEN), [429, "1"], "a fresh burst starts at 1 s");
    });
    await t.step("should not count a request without a token", async () => {
      clock += MAX_TOKEN_DELAY_MS;
      for (let i = 0; i < 3; i++) {
        const res = await post(control, "on");
        assert.equal(res.status, 401);
        await res.body?.cancel();
      }
      assert.equal((await send(TOKEN))[0], 200);
    });
  } finally {
    await server.close();
  }
});

Deno.test("ess serve refuses a control token no request could carry", async (t) => {
  const cases: [string, string, RegExp][] = [
    [
      "a token with a line break",
      `${TOKEN}\n`,
      /^ess: env ESS_CONTROL_TOKEN: the control token contains a blank \(a space, a tab or a line break\), which no Authorization header can carry\n$/,
    ],
    [
      "a token with a space",
      `${TOKEN} ${TOKEN}`,
      /^ess: env ESS_CONTROL_TOKEN: the control token contains a blank/,
    ],
    [
      "a token of 1025 characters",
      "t".repeat(1025),
      /^ess: env ESS_CONTROL_TOKEN: the control token has 1025 characters: use at most 1024, e\.g\. from 'openssl rand -hex 24'\n$/,
    ],
  ];
  for (const [what, token, message] of cases) {
    await t.step(`should exit 2 on ${what}, without quoting it`, async () => {
      const run = await runCli(
        ["serve", "--config", "/dev/null", "--host", "127.0.0.1:9", "--password", "a1b2c3d4e5f6"],
        { env: { ESS_CONTROL_TOKEN: token } },
      );
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, message);
      assert.ok(!run.stderr.includes(TOKEN) && !run.stderr.includes("tttt"), run.stderr);
    });
  }
});
