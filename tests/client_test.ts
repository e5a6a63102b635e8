import assert from "node:assert/strict";
import { rejectsWith } from "./_assert.ts";
import { EssClient, readDevicePassword, utcStamp } from "../lib/device/client.ts";
import {
  AuthError,
  BadAnswerError,
  DeviceRefusedError,
  LoginPathNotFoundError,
  WrongPasswordError,
} from "../lib/errors.ts";
import type { FetchLike } from "../lib/device/transport.ts";
import { fixture, htmlPage, stubDevice, type StubFirmware } from "./_stub.ts";

const PASSWORD = "a1b2c3d4e5f6";
const NOW = new Date(Date.UTC(2024, 5, 15, 12, 34, 56));

function clientFor(firmware: StubFirmware = "classic", password = PASSWORD) {
  const stub = stubDevice(firmware);
  const client = new EssClient({
    host: "10.20.30.40",
    password,
    fetch: stub.fetch,
    now: () => NOW,
  });
  return { stub, client };
}

Deno.test("login() on classic firmware", async (t) => {
  await t.step("should log in at /v1/user/setting/login and timesync in UTC", async () => {
    const { stub, client } = clientFor("classic");
    await client.login();
    assert.deepEqual(stub.paths(), ["/v1/user/setting/login", "/v1/user/setting/timesync"]);
    assert.deepEqual(stub.requests[0]!.body, { password: PASSWORD });
    assert.deepEqual(stub.requests[1]!.body, {
      auth_key: "stub-key-1",
      by: "phone",
      date_time: "2024-06-15 12:34:56",
    });
    assert.deepEqual(client.loginPath, "/v1/user/setting/login");
  });
  await t.step("should say wrong password with the MAC hint, without the password", async () => {
    const { client } = clientFor("classic", "not-the-password");
    const err = await rejectsWith(() => client.read("home"), WrongPasswordError);
    assert.match(err.message, /wrong password.*MAC address.*lowercase without colons/);
    assert.ok(!err.message.includes("not-the-password"));
    assert.deepEqual(err.exitCode, 1);
  });
});

Deno.test("login() on newer firmware", async (t) => {
  await t.step("should fall back to /v1/login on 404 and remember it", async () => {
    const { stub, client } = clientFor("new");
    await client.read("home");
    assert.deepEqual(stub.paths(), [
      "/v1/user/setting/login",
      "/v1/login",
      "/v1/user/setting/timesync",
      "/v1/user/essinfo/home",
    ]);
    stub.expire();
    stub.requests.length = 0;
    await client.read("home");
    assert.deepEqual(stub.paths(), [
      "/v1/user/essinfo/home",
      "/v1/login",
      "/v1/user/setting/timesync",
      "/v1/user/essinfo/home",
    ]);
    assert.deepEqual(client.logins, 2);
  });
  await t.step("should name both paths when neither exists", async () => {
    const fetch: FetchLike = () => Promise.resolve(htmlPage(404, "Not Found"));
    const client = new EssClient({ host: "10.20.30.40", password: PASSWORD, fetch });
    const err = await rejectsWith(() => client.login(), LoginPathNotFoundError);
    assert.match(err.message, /404 on \/v1\/user\/setting\/login and \/v1\/login/);
  });
});

Deno.test("read() returns every state with the device's values unchanged", async () => {
  for (const firmware of ["classic", "new"] as const) {
    const { client } = clientFor(firmware);
    const all = await client.readAll();
    assert.deepEqual(Object.keys(all), ["home", "common", "network", "systeminfo", "batt"]);
    for (const [name, value] of Object.entries(all)) {
      assert.deepEqual(value, fixture(`${firmware}/${name}.json`));
    }
    const common = all["common"] as Record<string, Record<string, string>>;
    assert.equal(common["GRID"]!["a_phase"], "229.600000");
    assert.equal(common["PCS"]!["month_co2_reduction_accum"], "");
  }
});

Deno.test("read() after the key expired", async (t) => {
  await t.step("should log in again and repeat the request with its own body", async () => {
    const { stub, client } = clientFor("classic");
    await client.graph("pv", "day", { year: 2024, month: 6, day: 15 });
    stub.expire();
    stub.requests.length = 0;
    await client.graph("load", "month", { year: 2024, month: 6, day: 15 });
    assert.deepEqual(stub.paths(), [
      "/v1/user/graph/load/month",
      "/v1/user/setting/login",
      "/v1/user/setting/timesync",
      "/v1/user/graph/load/month",
    ]);
    assert.deepEqual(stub.requests[0]!.body, { year_month: "202406", auth_key: "stub-key-1" });
    assert.deepEqual(stub.requests[3]!.body, { year_month: "202406", auth_key: "stub-key-2" });
  });
  await t.step("should accept the other firmware's auth failure bodies", async () => {
    for (const auth of ["auth failed", "auth timeout"]) {
      const { stub, client } = clientFor("classic");
      await client.login();
      stub.queue("/v1/user/essinfo/home", () => Response.json({ auth }, { status: 200 }));
      await client.read("home");
      assert.deepEqual(client.logins, 2);
    }
  });
  await t.step("should fail once a fresh key is refused too", async () => {
    const { stub, client } = clientFor("classic");
    await client.login();
    const refused = () => Response.json({ auth: "auth_key failed" }, { status: 405 });
    stub.queue("/v1/user/essinfo/home", refused);
    stub.queue("/v1/user/essinfo/home", refused);
    const err = await rejectsWith(() => client.read("home"), AuthError);
    assert.match(err.message, /Reading home on 10\.20\.30\.40/);
    assert.ok(!err.message.includes("stub-key"));
  });
});

Deno.test("read() with an nginx error page", async () => {
  const { stub, client } = clientFor("classic");
  stub.queue("/v1/user/essinfo/common", () => htmlPage(502, "Bad Gateway"));
  const err = await rejectsWith(() => client.read("common"), BadAnswerError);
  assert.deepEqual(err.status, 502);
  assert.match(
    err.message,
    /^Reading common on 10\.20\.30\.40 gave HTTP 502 with no JSON: "<html>/,
  );
  assert.deepEqual((await client.read("common"))["GRID"], fixture("classic/common.json")["GRID"]);
});

Deno.test("graph() sends the date field of its span", async () => {
  const date = { year: 2024, month: 6, day: 5 };
  const expected = {
    day: { year_month_day: "20240605" },
    week: { year_month_day: "20240605" },
    month: { year_month: "202406" },
    year: { year: "2024" },
  };
  for (const [span, field] of Object.entries(expected)) {
    const { stub, client } = clientFor("classic");
    const answer = await client.graph("batt", span as keyof typeof expected, date);
    const { auth_key: _, ...body } = stub.requests.at(-1)!.body;
    assert.deepEqual(body, field);
    assert.deepEqual(answer.loginfo, fixture(`graph/batt_${span}.json`)["loginfo"]);
  }
});

Deno.test("controls", async (t) => {
  const lastPut = (stub: ReturnType<typeof stubDevice>) => {
    const put = stub.requests.filter((r) => r.method === "PUT").at(-1)!;
    const { auth_key: _, ...body } = put.body;
    return { path: put.path, body };
  };
  await t.step("should switch winter mode on with wintermode=on", async () => {
    const { stub, client } = clientFor("classic");
    await client.setWinterMode(true);
    assert.deepEqual(lastPut(stub), { path: "/v1/user/setting/batt", body: { wintermode: "on" } });
    await client.setWinterMode(false);
    assert.deepEqual(lastPut(stub).body, { wintermode: "off" });
  });
  await t.step("should start and stop the system", async () => {
    const { stub, client } = clientFor("classic");
    await client.setOperation(false);
    assert.deepEqual(lastPut(stub), {
      path: "/v1/user/operation/status",
      body: { operation: "stop" },
    });
    await client.setOperation(true);
    assert.deepEqual(lastPut(stub).body, { operation: "start" });
  });
  await t.step("should write fast charge in the form the device reports", async () => {
    const classic = clientFor("classic");
    await classic.client.setFastCharge(true);
    assert.deepEqual(lastPut(classic.stub).body, { alg_setting: "on" });
    const newer = clientFor("new");
    await newer.client.setFastCharge(true);
    assert.deepEqual(lastPut(newer.stub).body, { alg_setting: "1" });
    await newer.client.setFastCharge(false);
    assert.deepEqual(lastPut(newer.stub).body, { alg_setting: "0" });
  });
  await t.step("should set the charge strategy, refusing what old firmware lacks", async () => {
    const newer = clientFor("new");
    await newer.client.setChargeStrategy("weather-forecast");
    assert.deepEqual(lastPut(newer.stub).body, { alg_setting: "2" });
    const classic = clientFor("classic");
    await classic.client.setChargeStrategy("battery-care");
    assert.deepEqual(lastPut(classic.stub).body, { alg_setting: "off" });
    await rejectsWith(
      () => classic.client.setChargeStrategy("weather-forecast"),
      DeviceRefusedError,
      /only has fast charge on\/off/,
    );
  });
  await t.step("should switch backup mode with its reserve, and grid charging", async () => {
    const { stub, client } = clientFor("new");
    await client.setBackupMode(true, 35);
    assert.deepEqual(lastPut(stub).body, { backupmode: "on", backup_soc: "35" });
    await client.setBackupMode(false);
    assert.deepEqual(lastPut(stub).body, { backupmode: "off" });
    await client.setGridCharge(true);
    assert.deepEqual(lastPut(stub).body, { autocharge: "1" });
  });
  await t.step("should report a refused control", async () => {
    const { stub, client } = clientFor("classic");
    stub.queue("/v1/user/setting/batt", () => Response.json({ status: "fail" }));
    await client.login();
    await rejectsWith(
      () => client.setWinterMode(true),
      DeviceRefusedError,
      /^Switching winter mode on on 10\.20\.30\.40 was refused: the device answered status "fail"$/,
    );
  });
});

Deno.test("requests never overlap on the device", async () => {
  const stub = stubDevice("classic");
  let inFlight = 0;
  let most = 0;
  const fetch: FetchLike = async (input, init) => {
    most = Math.max(most, ++inFlight);
    await new Promise((r) => setTimeout(r, 1));
    try {
      return await stub.fetch(input, init);
    } finally {
      inFlight--;
    }
  };
  const client = new EssClient({ host: "10.20.30.40", password: PASSWORD, fetch });
  await Promise.all([client.read("home"), client.setWinterMode(true), client.read("common")]);
  assert.deepEqual(most, 1);
  assert.deepEqual(client.logins, 1);
});

Deno.test("utcStamp() formats as timesync wants", () => {
  assert.deepEqual(utcStamp(new Date(Date.UTC(2019, 9, 3, 7, 5, 9))), "2019-10-03 07:05:09");
});

Deno.test("readDevicePassword()", async (t) => {
  await t.step("should return the password on the device's Wi-Fi", async () => {
    const fetch: FetchLike = (_input, init) => {
      assert.deepEqual(JSON.parse(String(init?.body)), { key: "lgepmsuser!@#" });
      return Promise.resolve(Response.json({ status: "success", password: "0a1b2c3d4e5f" }));
    };
    assert.deepEqual(await readDevicePassword(fetch, "192.168.23.1"), "0a1b2c3d4e5f");
  });
  await t.step("should explain a refusal", async () => {
    const fetch: FetchLike = () => Promise.resolve(Response.json({ status: "fail" }));
    await rejectsWith(
      () => readDevicePassword(fetch, "192.168.23.1"),
      DeviceRefusedError,
      /connect to the device's own Wi-Fi/,
    );
  });
});
