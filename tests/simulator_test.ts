/**
 * The simulator's HTTPS API, seen by an independent client (node:https, not ess's transport or
 * client), on both firmware settings.
 */
import assert from "node:assert/strict";
import https from "node:https";
import tls, { type TLSSocket } from "node:tls";
import { createLogger } from "../lib/log.ts";
import {
  MAX_CONNECTIONS,
  type Simulator,
  type SimulatorOptions,
  startSimulator,
} from "../lib/sim/simulator.ts";

interface Reply {
  status: number;
  text: string;
  json: Record<string, unknown> | undefined;
  fingerprint: string | undefined;
}

/** One request on its own connection; `body` is sent as JSON unless it is a string. */
function call(sim: Simulator, method: string, path: string, body?: unknown): Promise<Reply> {
  const payload = typeof body === "string" ? body : body === undefined ? "" : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: "127.0.0.1",
      port: sim.port,
      method,
      path,
      agent: false,
      rejectUnauthorized: false,
      headers: {
        "content-type": "application/json",
        "content-length": String(new TextEncoder().encode(payload).byteLength),
      },
    }, (res) => {
      const fingerprint = (res.socket as TLSSocket).getPeerCertificate?.()?.fingerprint256;
      const chunks: Uint8Array[] = [];
      res.on("data", (chunk: Uint8Array) => chunks.push(chunk));
      res.on("end", () => {
        const text = new TextDecoder().decode(Buffer.concat(chunks));
        let json: Record<string, unknown> | undefined;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, text, json, fingerprint });
      });
    });
    req.on("error", reject);
    req.end(payload);
  });
}

/** A fixed clock at a local time, in the test's time zone (UTC under `deno task test`). */
function clockAt(text: string): { now: () => Date; advance(ms: number): void } {
  let t = new Date(text).getTime();
  return { now: () => new Date(t), advance: (ms) => t += ms };
}

async function withSim(options: SimulatorOptions, fn: (sim: Simulator) => Promise<void>) {
  const sim = await startSimulator(options);
  try {
    await fn(sim);
  } finally {
    await sim.close();
  }
}

const LOGIN = { classic: "/v1/user/setting/login", new: "/v1/login", words: "/v1/login" } as const;
const OTHER_LOGIN = {
  classic: "/v1/login",
  new: "/v1/user/setting/login",
  words: "/v1/user/setting/login",
} as const;

async function login(sim: Simulator): Promise<string> {
  const reply = await call(sim, "PUT", LOGIN[sim.firmware], { password: sim.password });
  assert.equal(reply.json?.["status"], "success");
  return reply.json?.["auth_key"] as string;
}

const obj = (v: unknown) => v as Record<string, Record<string, string>>;

for (const firmware of ["classic", "new"] as const) {
  Deno.test(`simulator (${firmware} firmware) serves the device API`, async (t) => {
    const clock = clockAt("2026-06-17T13:10:00");
    await withSim({ firmware, now: clock.now }, async (sim) => {
      let key = "";

      await t.step("should log in at the firmware's path and 404 the other", async () => {
        const other = await call(sim, "PUT", OTHER_LOGIN[firmware], { password: sim.password });
        assert.equal(other.status, 404);
        const reply = await call(sim, "PUT", LOGIN[firmware], { password: sim.password });
        assert.equal(reply.status, 200);
        assert.equal(reply.json?.["status"], "success");
        assert.equal(reply.json?.["role"], "user");
        assert.equal(reply.json?.["regnum"], sim.device.name);
        assert.match(String(reply.json?.["auth_key"]), /^[0-9a-f-]{36}$/);
        assert.equal(reply.fingerprint, sim.fingerprint);
        key = String(reply.json?.["auth_key"]);
      });

      await t.step("should answer a wrong password with password mismatched", async () => {
        const reply = await call(sim, "PUT", LOGIN[firmware], { password: "0123456789ab" });
        assert.equal(reply.status, 200);
        assert.deepEqual(reply.json, { status: "password mismatched" });
      });

      await t.step("should timesync on classic firmware and 404 it on new", async () => {
        const reply = await call(sim, "PUT", "/v1/user/setting/timesync", {
          auth_key: key,
          by: "phone",
          date_time: "2026-06-17 13:10:00",
        });
        if (firmware === "classic") {
          assert.deepEqual(reply.json, { status: "success" });
          assert.equal(sim.device.lastTimesync, "2026-06-17 13:10:00");
        } else assert.equal(reply.status, 404);
      });

      await t.step("should read all five states in the device's shapes", async () => {
        const read = async (path: string) => {
          const reply = await call(sim, "POST", path, { auth_key: key });
          assert.equal(reply.status, 200, path);
          assert.match(reply.text, /^\{\n {4}"/, "pretty-printed like the device");
          return reply.json!;
        };
        const home = obj(await read("/v1/user/essinfo/home"));
        assert.deepEqual(Object.keys(home), [
          "statistics",
          "direction",
          "operation",
          "wintermode",
          "pcs_fault",
        ]);
        assert.match(home["statistics"]!["pcs_pv_total_power"]!, /^\d+$/);
        assert.match(home["statistics"]!["bat_user_soc"]!, /^\d+(\.\d{1,5})?$/);
        for (const value of Object.values(home["direction"]!)) assert.match(value, /^[01]$/);
        assert.equal(home["operation"]!["status"], "start");

        const common = obj(await read("/v1/user/essinfo/common"));
        assert.deepEqual(Object.keys(common), ["PV", "BATT", "GRID", "LOAD", "PCS"]);
        assert.match(common["GRID"]!["a_phase"]!, /^\d{3}\.\d{6}$/);
        assert.match(common["GRID"]!["freq"]!, /^(49|50)\.\d{6}$/);
        assert.match(common["BATT"]!["soc"]!, /^\d+\.\d$/);
        assert.equal(common["BATT"]!["safty_soc"], "10");
        assert.ok("today_batt_discharge_enery" in common["BATT"]!);
        assert.ok("pcs_stauts" in common["PCS"]!);

        const network = await read("/v1/user/setting/network");
        assert.equal(network["type"], "wired");
        const systeminfo = obj(await read("/v1/user/setting/systeminfo"));
        assert.match(systeminfo["version"]!["pms_version"]!, /^10\.05\./);
        const batt = await read("/v1/user/setting/batt");
        assert.equal(batt["alg_setting"], firmware === "classic" ? "off" : "0");
        assert.equal(batt["winter_setting"], "off");
      });

      await t.step("should tolerate doubled slashes in paths", async () => {
        const reply = await call(sim, "POST", "//v1/user//essinfo/home", { auth_key: key });
        assert.equal(reply.status, 200);
        assert.equal(sim.requests.at(-1)?.path, "/v1/user/essinfo/home");
      });

      await t.step("should answer every graph with the right rows", async () => {
        const graph = async (device: string, span: string, field: Record<string, string>) => {
          const reply = await call(sim, "POST", `/v1/user/graph/${device}/${span}`, {
            auth_key: key,
            ...field,
          });
          assert.equal(reply.status, 200, `${device} ${span}`);
          assert.equal(reply.json?.["db"], "success");
          return reply.json as { m_timeFrom: string; loginfo: Record<string, string>[] };
        };
        for (const device of ["pv", "load", "batt"]) {
          const past = {
            day: [{ year_month_day: "20260616" }, 96],
            week: [{ year_month_day: "20260603" }, 7],
            month: [{ year_month: "202602" }, 28],
            year: [{ year: "2025" }, 12],
          } as const;
          for (const [span, [field, rows]] of Object.entries(past)) {
            const answer = await graph(device, span, field);
            assert.equal(answer.loginfo.length, rows, `${device} ${span}`);
            answer.loginfo.forEach((row, i) => assert.equal(row["db"], String(i)));
          }
          // The current period so far: 13:10 is in the 53rd quarter hour, Wednesday is the
          // week's 3rd day, the 17th the month's 17th, June the year's 6th month.
          const current = {
            day: [{ year_month_day: "20260617" }, 53],
            week: [{ year_month_day: "20260617" }, 3],
            month: [{ year_month: "202606" }, 17],
            year: [{ year: "2026" }, 6],
          } as const;
          for (const [span, [field, rows]] of Object.entries(current)) {
            assert.equal((await graph(device, span, field)).loginfo.length, rows, span);
          }
          assert.equal(
            (await graph(device, "day", { year_month_day: "20260618" })).loginfo.length,
            0,
          );
        }
        const week = await graph("pv", "week", { year_month_day: "20260603" });
        assert.equal(week.m_timeFrom, "20260601000000", "weeks start on Monday");
        const day = await graph("batt", "day", { year_month_day: "20260616" });
        assert.equal(day.loginfo[1]?.["time"], "20260616001500");
        assert.ok("soc" in day.loginfo[0]!);
        const bad = await call(sim, "POST", "/v1/user/graph/pv/month", {
          auth_key: key,
          year_month: "2026-06",
        });
        assert.equal(bad.status, 400);
      });

      await t.step("should switch controls and show them in later reads", async () => {
        const put = async (path: string, body: Record<string, string>) =>
          (await call(sim, "PUT", path, { auth_key: key, ...body })).json?.["status"];
        const read = async (path: string) =>
          obj((await call(sim, "POST", path, { auth_key: key })).json);

        assert.equal(await put("/v1/user/operation/status", { operation: "stop" }), "success");
        let home = await read("/v1/user/essinfo/home");
        assert.equal(home["operation"]!["status"], "stop");
        assert.equal(home["statistics"]!["pcs_pv_total_power"], "0");
        assert.equal(home["statistics"]!["batconv_power"], "0");
        assert.equal(home["direction"]!["is_grid_buying_"], "1");
        assert.equal(await put("/v1/user/operation/status", { operation: "start" }), "success");
        assert.equal(await put("/v1/user/operation/status", { operation: "pause" }), "fail");
        home = await read("/v1/user/essinfo/home");
        assert.equal(home["operation"]!["status"], "start");

        assert.equal(await put("/v1/user/setting/batt", { wintermode: "on" }), "success");
        home = await read("/v1/user/essinfo/home");
        assert.equal(home["wintermode"]!["winter_status"], "on");
        let batt = (await read("/v1/user/setting/batt")) as unknown as Record<string, string>;
        assert.equal(batt["winter_setting"], "on");
        assert.equal(batt["winter_status"], "on");
        const common = await read("/v1/user/essinfo/common");
        assert.equal(common["BATT"]!["winter_setting"], "on");

        const [good, wrong] = firmware === "classic" ? ["on", "2"] : ["2", "on"];
        assert.equal(await put("/v1/user/setting/batt", { alg_setting: wrong }), "fail");
        assert.equal(await put("/v1/user/setting/batt", { alg_setting: good }), "success");
        assert.equal(
          await put("/v1/user/setting/batt", { backupmode: "on", backup_soc: "40" }),
          "success",
        );
        assert.equal(await put("/v1/user/setting/batt", { autocharge: "1" }), "success");
        assert.equal(await put("/v1/user/setting/batt", { backup_soc: "140" }), "fail");
        batt = (await read("/v1/user/setting/batt")) as unknown as Record<string, string>;
        assert.equal(batt["alg_setting"], good);
        assert.equal(batt["backup_setting"], "on");
        assert.equal(batt["backup_soc"], "40");
        assert.equal(batt["auto_charge"], "1");
        assert.equal(sim.device.algSetting, good);
      });

      await t.step("should refuse unknown and missing auth keys with 405", async () => {
        for (const body of [{ auth_key: "not-a-key" }, {}]) {
          const reply = await call(sim, "POST", "/v1/user/essinfo/home", body);
          assert.equal(reply.status, 405);
          assert.deepEqual(reply.json, { auth: "auth_key failed" });
        }
      });

      await t.step("should 404 unknown paths and 400 bodies that are not JSON", async () => {
        const unknown = await call(sim, "POST", "/v1/user/essinfo/nothing", { auth_key: key });
        assert.equal(unknown.status, 404);
        const notJson = await call(sim, "POST", "/v1/user/essinfo/home", "auth_key=x");
        assert.equal(notJson.status, 400);
        assert.equal(sim.requests.at(-1)?.body, undefined);
      });

      await t.step("should tell the password for the app's key only", async () => {
        const good = await call(sim, "POST", "/v1/user/setting/read/password", {
          key: "lgepmsuser!@#",
        });
        assert.deepEqual(good.json, { status: "success", password: sim.password });
        const bad = await call(sim, "POST", "/v1/user/setting/read/password", { key: "guess" });
        assert.deepEqual(bad.json, { status: "fail" });
      });

      await t.step("should record what reached the device", () => {
        const timesync = sim.requests.find((r) => r.path === "/v1/user/setting/timesync");
        assert.equal(timesync?.method, "PUT");
        assert.equal(timesync?.status, firmware === "classic" ? 200 : 404);
        assert.deepEqual((timesync?.body as Record<string, string>)["by"], "phone");
      });
    });
  });
}

Deno.test("simulator faults", async (t) => {
  const clock = clockAt("2026-03-02T09:00:00");
  await withSim(
    { now: clock.now, keyLifetimeSeconds: 60, password: "0a1b2c3d4e5f" },
    async (sim) => {
      const home = (key: string) => call(sim, "POST", "/v1/user/essinfo/home", { auth_key: key });

      await t.step("should expire keys after their lifetime", async () => {
        const key = await login(sim);
        clock.advance(59_000);
        assert.equal((await home(key)).status, 200);
        clock.advance(1_000);
        const reply = await home(key);
        assert.equal(reply.status, 405);
        assert.deepEqual(reply.json, { auth: "auth_key failed" });
      });

      await t.step("should expire keys on command", async () => {
        const key = await login(sim);
        assert.equal((await home(key)).status, 200);
        sim.expireKeys();
        assert.equal((await home(key)).status, 405);
      });

      await t.step("should keep the 64 newest keys", async () => {
        const first = await login(sim);
        const second = await login(sim);
        for (let i = 0; i < 63; i++) await login(sim);
        assert.equal((await home(first)).status, 405);
        assert.equal((await home(second)).status, 200);
      });

      await t.step("should turn answers into nginx 502 pages at the error rate", async () => {
        const key = await login(sim);
        sim.setFaults({ errorRate: 1 });
        const reply = await home(key);
        assert.equal(reply.status, 502);
        assert.match(reply.text, /^<html>\r\n<head><title>502 Bad Gateway<\/title>/);
        assert.match(reply.text, /nginx\/1\.10\.3/);
        sim.setFaults({ errorRate: 0.5 });
        const statuses = [];
        for (let i = 0; i < 40; i++) statuses.push((await home(key)).status);
        assert.ok(statuses.includes(200) && statuses.includes(502), statuses.join());
        sim.setFaults({ errorRate: 0 });
        assert.equal((await home(key)).status, 200);
        assert.throws(() => sim.setFaults({ errorRate: 2 }), RangeError);
      });

      await t.step("should still answer with added latency", async () => {
        sim.setFaults({ latencyMs: 20 });
        assert.equal((await home(await login(sim))).status, 200);
        sim.setFaults({ latencyMs: 0 });
      });

      await t.step(
        "should refuse connections for a while, then listen on the same port",
        async () => {
          const port = sim.port;
          await sim.refuseConnections(100);
          await assert.rejects(() => home("x"), (err: Error & { code?: string }) => {
            assert.equal(err.code, "ECONNREFUSED");
            return true;
          });
          let reply: Reply | undefined;
          for (let i = 0; i < 100 && !reply; i++) {
            await new Promise((resolve) => setTimeout(resolve, 50));
            reply = await home("x").catch(() => undefined);
          }
          assert.equal(reply?.status, 405);
          assert.equal(sim.port, port);
        },
      );
    },
  );
});

Deno.test("startSimulator() closes cleanly while refusing connections", async () => {
  const sim = await startSimulator();
  await sim.refuseConnections(60_000);
  await sim.close();
  await sim.close();
});

Deno.test("startSimulator() reports a port in use as one clear error", async () => {
  await withSim({}, async (sim) => {
    await assert.rejects(
      () => startSimulator({ port: sim.port }),
      (err: Error) => {
        assert.match(err.message, new RegExp(`^Cannot listen on 127\\.0\\.0\\.1:${sim.port}: `));
        return true;
      },
    );
  });
});

Deno.test("startSimulator() announces over mDNS only when asked", async () => {
  const announced: unknown[] = [];
  const announce = (info: unknown) => {
    announced.push(info);
    return { close: () => Promise.resolve() };
  };
  await withSim({ announce }, () => Promise.resolve());
  assert.equal(announced.length, 0);
  await withSim(
    { announce, mdns: { interfaceAddress: "10.0.0.1" }, name: "SIMTEST" },
    (sim) => {
      assert.deepEqual(announced, [{
        name: "SIMTEST",
        port: sim.port,
        address: "127.0.0.1",
        interfaceAddress: "10.0.0.1",
      }]);
      return Promise.resolve();
    },
  );
});

Deno.test("startSimulator() keeps no request list when told not to record", async () => {
  await withSim({ recordRequests: false }, async (sim) => {
    const login = await call(sim, "PUT", "/v1/user/setting/login", { password: sim.password });
    assert.equal(login.status, 200);
    assert.equal(sim.requests.length, 0);
  });
});

Deno.test("startSimulator() survives a request cut off mid-body", async (t) => {
  const lines: string[] = [];
  const logger = createLogger("debug", (line) => lines.push(line));
  await withSim({ logger }, async (sim) => {
    await t.step("should log one line and keep serving", async () => {
      const socket = tls.connect({ host: "127.0.0.1", port: sim.port, rejectUnauthorized: false });
      await new Promise<void>((resolve, reject) => {
        socket.once("secureConnect", resolve);
        socket.once("error", reject);
      });
      const closed = new Promise((resolve) => socket.once("close", resolve));
      socket.end(
        "PUT /v1/user/setting/login HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" +
          '{"password": "a1b2',
      );
      await closed;
      const cut = () => lines.filter((l) => /cut off before its body was complete/.test(l));
      for (let i = 0; i < 100 && cut().length === 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.equal(cut().length, 1, lines.join("\n"));
      assert.match(cut()[0]!, /^warning: simulator: PUT \/v1\/user\/setting\/login was cut off/);
      assert.equal(await login(sim) === undefined, false);
    });
  });
});

Deno.test("startSimulator() answers a body over 1 MiB 413, as nginx does, and keeps none of it", async (t) => {
  await withSim({}, async (sim) => {
    await t.step("should answer 413 and keep serving", async () => {
      const big = JSON.stringify({ password: "x".repeat(2 * 1024 * 1024) });
      const reply = await call(sim, "PUT", LOGIN.classic, big);
      assert.equal(reply.status, 413);
      assert.match(reply.text, /413 Request Entity Too Large/);
      assert.equal(sim.requests.length, 0, "never handled, so never recorded");
      assert.equal(typeof await login(sim), "string");
    });
  });
});

Deno.test("startSimulator() holds a bounded number of connections", async (t) => {
  await withSim({}, async (sim) => {
    const held: Deno.TcpConn[] = [];
    try {
      for (let i = 0; i < MAX_CONNECTIONS; i++) {
        held.push(await Deno.connect({ hostname: "127.0.0.1", port: sim.port }));
      }
      await t.step(`should close connection ${MAX_CONNECTIONS + 1} at once`, async () => {
        const extra = await Deno.connect({ hostname: "127.0.0.1", port: sim.port });
        let timer: ReturnType<typeof setTimeout> | undefined;
        const read = await Promise.race([
          extra.read(new Uint8Array(16)).catch(() => null),
          new Promise((resolve) => timer = setTimeout(() => resolve("still open after 5 s"), 5000)),
        ]);
        clearTimeout(timer);
        extra.close();
        assert.equal(read, null);
      });
    } finally {
      for (const conn of held) conn.close();
    }
    await t.step("should serve again once they are gone", async () => {
      let key: string | undefined;
      for (let i = 0; i < 100 && key === undefined; i++) {
        key = await login(sim).catch(() => undefined);
        if (key === undefined) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.equal(typeof key, "string");
    });
  });
});
