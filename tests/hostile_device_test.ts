import assert from "node:assert/strict";
import { EssClient } from "../lib/device/client.ts";
import { retryOnce } from "../lib/device/retry.ts";
import { createDeviceFetch, type FetchLike } from "../lib/device/transport.ts";
import {
  AnswerLimitError,
  BadAnswerError,
  DeviceRefusedError,
  TimeoutError,
  UnreachableError,
  WrongPasswordError,
} from "../lib/errors.ts";
import { createLogger, type Logger } from "../lib/log.ts";
import { rejectsWith } from "./_assert.ts";
import {
  cutOff,
  deeplyNested,
  drip,
  endlessInterim,
  HOSTILE_PASSWORD,
  type HostileDevice,
  type HostileRequest,
  json,
  manyKeys,
  nginxPage,
  raw,
  readsHome,
  reset,
  startHostileDevice,
  text,
  withHostileDevice,
} from "./_hostile_device.ts";

/** A client of `device` with a debug logger whose lines the test can read. */
function clientOf(
  device: HostileDevice,
  options: { retry?: boolean; timeoutMs?: number; password?: string } = {},
) {
  const lines: string[] = [];
  const logger: Logger = createLogger("debug", (line) => lines.push(line));
  const transport = createDeviceFetch({
    timeoutMs: options.timeoutMs ?? 5000,
    redactor: logger.redactor,
  });
  const pauses: number[] = [];
  const fetch: FetchLike = options.retry
    ? retryOnce(transport, {
      logger,
      sleep: (ms) => {
        pauses.push(ms);
        return Promise.resolve();
      },
    })
    : transport;
  const client = new EssClient({
    host: device.host,
    password: options.password ?? device.password,
    fetch,
    logger,
  });
  return { client, lines, pauses, close: () => transport.close() };
}

Deno.test("EssClient refuses answers beyond the limits instead of dying", async (t) => {
  const cases: [string, () => ReturnType<HostileDevice["misbehave"]>, RegExp][] = [
    [
      "a 3.6 MB answer with 200,000 keys (the body cap)",
      () => text(manyKeys(200_000)),
      /^Refusing the answer from 127\.0\.0\.1:\d+: an answer of \d+ bytes is too large \(at most 1 MiB\)/,
    ],
    [
      "60,000 keys under the body cap (the leaf cap)",
      () => text(manyKeys(60_000)),
      /^Reading home on 127\.0\.0\.1:\d+: refusing the answer, it holds more than 10000 values/,
    ],
    [
      "a 15 kB answer nested 3,000 levels deep (the depth limit)",
      () => text(deeplyNested(3000)),
      /^Reading home on 127\.0\.0\.1:\d+: refusing the answer, it is nested more than 32 levels deep/,
    ],
    [
      "interim 100 Continue answers without end",
      () => endlessInterim(),
      /more than 4 interim \(1xx\) answers/,
    ],
  ];
  for (const [what, behaviour, message] of cases) {
    await t.step(`should refuse ${what} with an AnswerLimitError`, async () => {
      await withHostileDevice((r) => readsHome(r) ? behaviour() : undefined, async (device) => {
        const { client, close } = clientOf(device);
        try {
          const err = await rejectsWith(() => client.read("home"), AnswerLimitError, message);
          assert.equal(err.transient, false);
          assert.equal(err.exitCode, 1);
          assert.deepEqual(Object.keys(await client.read("batt")).length > 0, true);
        } finally {
          close();
        }
      });
    });
  }
  await t.step("should give up on an answer dripped a byte at a time at the timeout", async () => {
    await withHostileDevice(
      (r) => readsHome(r) ? drip('{"a":"b"}', 50) : undefined,
      async (device) => {
        const { client, close } = clientOf(device, { timeoutMs: 300 });
        try {
          await rejectsWith(() => client.read("home"), TimeoutError, /within 0\.3 s/);
        } finally {
          close();
        }
      },
    );
  });
});

Deno.test("EssClient refuses an answer that could mean two things", async (t) => {
  const body = '{"statistics":{"load_power":"410"}}';
  const answer = (headers: string, payload = body) =>
    `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n${headers}\r\n${payload}`;
  const chunked = `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
  const cases: [string, string, RegExp][] = [
    [
      "two different Content-Length values",
      answer(`Content-Length: 2\r\nContent-Length: ${body.length}\r\n`),
      /Content-Length headers that differ/,
    ],
    [
      "a transfer coding besides chunked",
      answer("Transfer-Encoding: gzip, chunked\r\n", chunked),
      /unsupported transfer encoding "gzip, chunked": ess takes chunked only/,
    ],
    [
      "both Transfer-Encoding and Content-Length",
      answer(`Transfer-Encoding: chunked\r\nContent-Length: ${chunked.length}\r\n`, chunked),
      /both Transfer-Encoding and Content-Length/,
    ],
    [
      "a space before the colon",
      answer(`Content-Length : ${body.length}\r\n`),
      /malformed header line "Content-Length : \d+"/,
    ],
    [
      "a folded header line",
      answer(`Content-Length: ${body.length}\r\nX-Note: a\r\n b: c\r\n`),
      /malformed header line "b: c"/,
    ],
  ];
  for (const [what, wire, message] of cases) {
    await t.step(`should refuse ${what}`, async () => {
      await withHostileDevice((r) => readsHome(r) ? raw(wire) : undefined, async (device) => {
        const { client, close } = clientOf(device);
        try {
          await rejectsWith(
            () => client.read("home"),
            UnreachableError,
            new RegExp(
              `^Cannot talk to 127\\.0\\.0\\.1:\\d+: not an HTTP answer \\(.*${message.source}`,
            ),
          );
          assert.equal(Object.keys(await client.read("batt")).length > 0, true, "it goes on");
        } finally {
          close();
        }
      });
    });
  }
  await t.step("should take plain chunked, and one length repeated", async () => {
    for (
      const headers of [
        "Transfer-Encoding: Chunked\r\n",
        `Content-Length: ${body.length}, ${body.length}\r\n`,
      ]
    ) {
      const wire = answer(headers, headers.startsWith("Transfer") ? chunked : body);
      await withHostileDevice((r) => readsHome(r) ? raw(wire) : undefined, async (device) => {
        const { client, close } = clientOf(device);
        try {
          assert.deepEqual(await client.read("home"), JSON.parse(body));
        } finally {
          close();
        }
      });
    }
  });
});

Deno.test("EssClient never quotes a secret the device echoes", async (t) => {
  await t.step("should redact the password a failing login echoes, at every level", async () => {
    await withHostileDevice(
      (r) =>
        r.path === "/v1/user/setting/login"
          ? json({ status: `oops ${String(r.body?.["password"])}` }, 500)
          : undefined,
      async (device) => {
        const { client, lines, close } = clientOf(device);
        try {
          const err = await rejectsWith(
            () => client.read("home"),
            DeviceRefusedError,
            /^Login on 127\.0\.0\.1:\d+ failed: HTTP 500, status "oops \*\*\*"$/,
          );
          assert.ok(!err.message.includes(device.password));
          assert.ok(lines.length > 0 && lines.every((l) => !l.includes(device.password)));
        } finally {
          close();
        }
      },
    );
  });
  await t.step("should redact an auth key echoed in a refusal, whole and in part", async () => {
    await withHostileDevice(
      (r) =>
        r.method === "PUT" && r.path === "/v1/user/setting/batt"
          ? json({ status: `${"x".repeat(40)} bad key ${String(r.body?.["auth_key"])} !` })
          : undefined,
      async (device) => {
        const { client, lines, close } = clientOf(device);
        try {
          const err = await rejectsWith(
            () => client.setWinterMode(true),
            DeviceRefusedError,
            /was refused: the device answered status "x{40} bad key \*\*\* !"$/,
          );
          const key = device.keys[0]!;
          assert.ok(!err.message.includes(key.slice(0, 8)), err.message);
          assert.ok(lines.every((l) => !l.includes(key.slice(0, 8))));
        } finally {
          close();
        }
      },
    );
  });
  await t.step(
    "should redact an HTML error page quoting the key before shortening it",
    async () => {
      await withHostileDevice(
        (r) =>
          readsHome(r)
            ? text(`${"<p>".repeat(17)}${String(r.body?.["auth_key"])}`, 404, "text/html")
            : undefined,
        async (device) => {
          const { client, close } = clientOf(device);
          try {
            const err = await rejectsWith(() => client.read("home"), BadAnswerError);
            assert.match(err.message, /"(<p>){17}\*\*\*"$/);
            assert.ok(!err.message.includes(device.keys[0]!.slice(0, 4)), err.message);
          } finally {
            close();
          }
        },
      );
    },
  );
  await t.step("should redact the password in a status line the parser quotes", async () => {
    await withHostileDevice(
      (r) =>
        readsHome(r)
          ? (socket) => socket.write(`HTTP/2 200 ${HOSTILE_PASSWORD}\r\n\r\n`)
          : undefined,
      async (device) => {
        const { client, close } = clientOf(device);
        try {
          const err = await rejectsWith(() => client.read("home"), UnreachableError);
          assert.match(err.message, /not an HTTP\/1\.x status line: "HTTP\/2 200 \*\*\*"/);
        } finally {
          close();
        }
      },
    );
  });
});

Deno.test("retryOnce() tries a transient failure once more", async (t) => {
  const once = (path: string, behaviour: () => ReturnType<HostileDevice["misbehave"]>) => {
    let done = false;
    return (r: HostileRequest) => {
      if (r.path !== path || done) return undefined;
      done = true;
      return behaviour();
    };
  };
  const HOME = "/v1/user/essinfo/home";
  // A reset of a connection that carried requests before is the transport's own business (it
  // reconnects once at once, as for a keep-alive the device let lapse): reset the first request.
  const LOGIN = "/v1/user/setting/login";
  const transients: [string, string, () => ReturnType<HostileDevice["misbehave"]>][] = [
    ["an nginx 502 page", HOME, () => nginxPage(502)],
    ["a reset connection", LOGIN, () => reset()],
    ["an answer cut off", HOME, () => cutOff('{"statistics": {"load_power": "1"}}')],
  ];
  for (const [what, path, behaviour] of transients) {
    await t.step(`should read home after ${what}, pausing once`, async () => {
      await withHostileDevice(once(path, behaviour), async (device) => {
        const { client, pauses, lines, close } = clientOf(device, { retry: true });
        try {
          assert.ok((await client.read("home"))["statistics"]);
          assert.deepEqual(pauses, [1500]);
          assert.equal(device.requests.filter((r) => r.path === path).length, 2);
          assert.ok(lines.some((l) => /one more try/.test(l)), lines.join("\n"));
        } finally {
          close();
        }
      });
    });
  }
  await t.step("should fail after a second 502, saying it may be transient", async () => {
    await withHostileDevice((r) => readsHome(r) ? nginxPage(502) : undefined, async (device) => {
      const { client, pauses, close } = clientOf(device, { retry: true });
      try {
        const err = await rejectsWith(
          () => client.read("home"),
          BadAnswerError,
          /gave HTTP 502 with no JSON: .*the device may be busy; this may be transient/,
        );
        assert.equal(err.transient, true);
        assert.deepEqual(pauses, [1500]);
        assert.equal(device.requests.filter(readsHome).length, 2);
      } finally {
        close();
      }
    });
  });
  await t.step("should send a control again after a 502, once", async () => {
    await withHostileDevice(
      () => undefined,
      async (device) => {
        device.misbehave = (r) =>
          r.method === "PUT" && r.path === "/v1/user/operation/status" &&
            device.requests.filter((q) => q.path === r.path).length === 1
            ? nginxPage(502)
            : undefined;
        const { client, close } = clientOf(device, { retry: true });
        try {
          await client.setOperation(false);
          const puts = device.requests.filter((r) => r.path === "/v1/user/operation/status");
          assert.deepEqual(puts.map((r) => r.body?.["operation"]), ["stop", "stop"]);
        } finally {
          close();
        }
      },
    );
  });
  await t.step("should not retry what a second try cannot fix", async () => {
    await withHostileDevice(
      (r) => readsHome(r) ? json({ status: "broken" }, 500) : undefined,
      async (device) => {
        const { client, pauses, close } = clientOf(device, { retry: true });
        try {
          await rejectsWith(() => client.read("home"), DeviceRefusedError, /HTTP 500/);
          const wrong = clientOf(device, { retry: true, password: "0011aabbccdd" });
          await rejectsWith(() => wrong.client.read("home"), WrongPasswordError);
          wrong.close();
          assert.deepEqual(pauses, []);
        } finally {
          close();
        }
      },
    );
  });
  await t.step("should try a refused connection once more", async () => {
    const gone = await startHostileDevice();
    await gone.close();
    const transport = createDeviceFetch();
    let calls = 0;
    const counting: FetchLike = (input, init) => {
      calls++;
      return transport(input, init);
    };
    try {
      await rejectsWith(
        () => retryOnce(counting, { sleep: () => Promise.resolve() })(`https://${gone.host}/`),
        UnreachableError,
        /connection refused .*this may be transient/,
      );
      assert.equal(calls, 2);
    } finally {
      transport.close();
    }
  });
});

Deno.test("createDeviceFetch() says an answer was cut off", async (t) => {
  await t.step("should say a connection closed before the answer was complete", async () => {
    await withHostileDevice(
      (r) => readsHome(r) ? cutOff('{"a": "bcdefgh"}') : undefined,
      async (device) => {
        const { client, close } = clientOf(device);
        try {
          const err = await rejectsWith(
            () => client.read("home"),
            UnreachableError,
            /^Cannot talk to 127\.0\.0\.1:\d+: the connection closed before the answer was complete; this may be transient/,
          );
          assert.equal(err.transient, true);
        } finally {
          close();
        }
      },
    );
  });
});

Deno.test("EssClient refuses backup controls the firmware does not have", async (t) => {
  for (
    const [what, run] of [
      ["backup mode", (c: EssClient) => c.setBackupMode(true, 30)],
      ["grid charging", (c: EssClient) => c.setGridCharge(true)],
    ] as const
  ) {
    await t.step(`should refuse ${what} without sending it`, async () => {
      await withHostileDevice(() => undefined, async (device) => {
        const { client, close } = clientOf(device);
        try {
          await rejectsWith(
            () => run(client),
            DeviceRefusedError,
            /: this firmware has no backup mode \(its battery settings report neither/,
          );
          assert.deepEqual(
            device.requests.filter((r) => r.method === "PUT" && r.path.endsWith("/batt")),
            [],
          );
        } finally {
          close();
        }
      });
    });
  }
});

Deno.test("startHostileDevice() serves what the test supplies per state", async () => {
  const device = await startHostileDevice({
    state: (name, count) => ({ [`key_${count}`]: `${name}\n#+\u0000` }),
  });
  const { client, close } = clientOf(device);
  try {
    assert.deepEqual(await client.read("home"), { key_0: "home\n#+\u0000" });
    assert.deepEqual(await client.read("home"), { key_1: "home\n#+\u0000" });
  } finally {
    close();
    await device.close();
  }
});
