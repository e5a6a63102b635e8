import assert from "node:assert/strict";
import { DEVICE_OPTIONS, GENERAL_OPTIONS, type Io } from "../commands/_cli.ts";
import { siteSurplus, SURPLUS_OPTIONS, surplusConfig } from "../commands/_surplus.ts";
import type { PollEvent, PollListener } from "../lib/device/poller.ts";
import { ConfigError, UsageError } from "../lib/errors.ts";
import type { Reading } from "../lib/model/reading.ts";
import type { SurplusState } from "../lib/surplus/engine.ts";
import type { RuleSettings } from "../lib/surplus/rule.ts";
import { SiteSurplusEngine } from "../lib/surplus/site.ts";
import { parsed } from "./_parse.ts";
import { waitFor } from "./_wait.ts";

const SURPLUS = { prioritySocPct: 80, reserveW: 100, windowMs: 60_000 };

/** A reading with only what the surplus reads (and the energy the site's sum looks at). */
function reading(gridW: number, batteryW = 0, socPct = 50): Reading {
  return { power: { gridW, batteryW }, socPct, energy: {} } as unknown as Reading;
}

function rule(name: string, device: string | undefined, onWatts: number): RuleSettings {
  return {
    name,
    onWatts,
    offWatts: 0,
    loadWatts: 0,
    onDelaySeconds: 60,
    offDelaySeconds: 0,
    minOnSeconds: 0,
    minOffSeconds: 0,
    minSoc: 0,
    ...(device === undefined ? {} : { device }),
  };
}

const ruleOf = (state: SurplusState, name: string) => state.rules.find((r) => r.name === name)!;

Deno.test("SiteSurplusEngine sums the devices and follows each rule's power", async (t) => {
  const engines = () =>
    new SiteSurplusEngine({
      surplus: SURPLUS,
      rules: [rule("boiler", "site", 2500), rule("pump", "garage", 800)],
      devices: ["garage", "house"],
      graceMs: 30_000,
    });

  await t.step("should put each rule on the engine of the power it follows", () => {
    const e = engines();
    assert.deepEqual(e.site.rules.map((r) => r.name), ["boiler"]);
    assert.deepEqual(e.devices.get("garage")!.rules.map((r) => r.name), ["pump"]);
    assert.deepEqual(e.devices.get("house")!.rules, []);
  });

  await t.step("should add the devices' surpluses up and keep the reserve back once", () => {
    const e = engines();
    // garage feeds in 1500 W and charges 1000 W at 90 % (counts); house feeds in 1200 W and
    // charges 700 W at 60 % (kept: below the priority SoC).
    e.update("garage", 0, reading(-1500, -1000, 90));
    const { device, site } = e.update("house", 2_000, reading(-1200, -700, 60));
    assert.equal(device.powerW, 1200 - 100);
    assert.equal(e.devices.get("garage")!.state.powerW, 2500 - 100);
    assert.equal(site.powerW, 2500 + 1200 - 100);
    assert.equal(site.instantW, 3600);
  });

  await t.step("should count a discharging device against a charging one", () => {
    const e = engines();
    e.update("garage", 0, reading(-2000, -500, 50));
    const { site } = e.update("house", 0, reading(0, 1500, 50));
    assert.equal(site.powerW, 2000 - 1500 - 100);
  });

  await t.step("should switch a site rule on the sum that no device reaches alone", () => {
    const e = engines();
    let site: SurplusState | undefined;
    for (let at = 0; at <= 60_000; at += 10_000) {
      e.update("garage", at, reading(-1400));
      site = e.update("house", at + 1_000, reading(-1400)).site;
    }
    assert.equal(site!.powerW, 2700);
    assert.equal(ruleOf(site!, "boiler").on, true);
    assert.equal(ruleOf(site!, "boiler").reason, "switched-on");
    // The garage's own rule sees the garage's 1300 W only.
    const garage = e.devices.get("garage")!.state;
    assert.equal(garage.powerW, 1300);
    assert.equal(ruleOf(garage, "pump").on, true);
  });

  await t.step("should wait for every device before it knows the site's surplus", () => {
    const e = engines();
    const first = e.update("garage", 0, reading(-5000)).site;
    assert.equal(first.powerW, undefined);
    assert.equal(ruleOf(first, "boiler").reason, "unknown");
    assert.equal(e.devices.get("garage")!.state.powerW, 4900);
  });
});

Deno.test("SiteSurplusEngine with a device that does not answer", async (t) => {
  const e = new SiteSurplusEngine({
    surplus: SURPLUS,
    rules: [rule("boiler", "site", 2000), rule("pump", "garage", 800)],
    devices: ["garage", "house"],
    graceMs: 30_000,
  });
  // Both devices feed in 1500 W, every 10 s (the house 1 s after the garage), for 2 minutes.
  let at = 0;
  const poll = (house: Reading | undefined) => {
    e.update("garage", at, reading(-1500));
    const states = e.update("house", at + 1_000, house);
    at += 10_000;
    return states;
  };
  for (let i = 0; i < 12; i++) poll(reading(-1500));
  assert.equal(ruleOf(e.site.state, "boiler").on, true);

  await t.step("should hold the site's rules within the grace period", () => {
    const { site } = poll(undefined);
    assert.equal(site.failSafe, false);
    assert.equal(site.instantW, undefined);
    assert.equal(ruleOf(site, "boiler").on, true);
    // The garage's polls do not count without the house's.
    e.update("garage", at, reading(-1500));
    assert.equal(e.site.state.instantW, undefined);
  });

  await t.step("should turn the site's rules off once a device has missed the grace", () => {
    let site: SurplusState | undefined;
    for (let i = 0; i < 3; i++) site = poll(undefined).site;
    assert.equal(site!.failSafe, true);
    assert.equal(site!.powerW, undefined);
    const boiler = ruleOf(site!, "boiler");
    assert.equal(boiler.on, false);
    assert.equal(boiler.reason, "offline");
    assert.match(boiler.why, /^house offline for \d+ s \(grace 30 s\): off$/);
  });

  await t.step("should keep the other device's surplus and rules going", () => {
    const garage = e.devices.get("garage")!.state;
    assert.equal(garage.failSafe, false);
    assert.equal(garage.powerW, 1400);
    assert.equal(ruleOf(garage, "pump").on, true);
  });

  await t.step("should start over with the on delay once the device answers again", () => {
    const back = poll(reading(-1500)).site;
    assert.equal(back.powerW, 2900);
    assert.equal(ruleOf(back, "boiler").reason, "on-delay");
    let site = back;
    for (let i = 0; i < 7; i++) site = poll(reading(-1500)).site;
    assert.equal(ruleOf(site, "boiler").on, true);
  });
});

Deno.test("SiteSurplusEngine refuses a rule that follows no device of the site", () => {
  assert.throws(
    () =>
      new SiteSurplusEngine({
        surplus: SURPLUS,
        rules: [rule("pump", "shed", 800)],
        devices: ["garage"],
        graceMs: 30_000,
      }),
    /rule pump follows shed, which is not a device/,
  );
});

const command = {
  name: "surplus",
  usage: "surplus",
  description: "test",
  options: [...DEVICE_OPTIONS, ...GENERAL_OPTIONS, ...SURPLUS_OPTIONS],
  examples: [],
};

function io(): Io {
  return {
    out: () => {},
    err: () => {},
    stdoutIsTerminal: false,
    stderrIsTerminal: false,
    env: () => undefined,
  };
}

async function withConfig<T>(text: string, fn: (path: string) => Promise<T>): Promise<T> {
  const path = await Deno.makeTempFile({ suffix: ".conf" });
  try {
    await Deno.writeTextFile(path, text);
    return await fn(path);
  } finally {
    await Deno.remove(path);
  }
}

const SECTIONS = [
  "[device garage]",
  "host = 192.168.1.20",
  "[device house]",
  "host = 192.168.1.21",
  "",
].join("\n");

Deno.test("surplusConfig() with several devices: the power each rule follows", async (t) => {
  const config = (top: string, args: string[] = []) =>
    withConfig(
      `${top}\n${SECTIONS}`,
      async (path) => surplusConfig(await parsed(command, ["--config", path, ...args], io())),
    );

  await t.step("should let a rule follow the site by default, or the device it names", async () => {
    const c = await config(
      [
        "surplus.boiler.on-watts = 2500",
        "surplus.pump.on-watts = 800",
        "surplus.pump.device = garage",
        "surplus.dryer.on-watts = 900",
        "surplus.dryer.device = site",
      ].join("\n"),
      ["--surplus-rule", "fan:on-watts=300,device=house"],
    );
    assert.deepEqual(c.rules.map((r) => [r.name, r.device]), [
      ["boiler", "site"],
      ["pump", "garage"],
      ["dryer", "site"],
      ["fan", "house"],
    ]);
  });

  await t.step("should name the file and line of a device that is not in the config", async () => {
    await withConfig(
      `surplus.pump.on-watts = 800\nsurplus.pump.device = shed\n${SECTIONS}`,
      async (path) => {
        const p = await parsed(command, ["--config", path], io());
        assert.throws(
          () => surplusConfig(p),
          (err) =>
            err instanceof ConfigError &&
            err.message === `${path}:2: rule pump: device must be site (the sum of every ` +
                `device) or one of garage, house, not "shed"`,
        );
      },
    );
  });

  await t.step("should name the option of a bad device on the command line", async () => {
    await assert.rejects(
      () => config("", ["--surplus-rule", "fan:on-watts=300,device=Garage"]),
      (err) =>
        err instanceof UsageError &&
        /^--surplus-rule: rule fan: device must be site .* not "Garage"$/.test(err.message),
    );
  });

  await t.step("should refuse a device setting in a single-device config", async () => {
    await withConfig(
      "host = 192.168.1.20\nsurplus.pump.on-watts = 800\nsurplus.pump.device = garage\n",
      async (path) => {
        const p = await parsed(command, ["--config", path], io());
        assert.throws(
          () => surplusConfig(p),
          (err) =>
            err instanceof ConfigError &&
            err.message.startsWith(`${path}:3: rule pump: device chooses among the config's `) &&
            err.message.endsWith(
              "with one device, every rule follows it (drop the device setting)",
            ),
        );
      },
    );
    const p = await parsed(command, ["--surplus-rule", "pump:on-watts=800"], io());
    assert.equal(surplusConfig(p).rules[0]!.device, undefined);
  });

  await t.step("should refuse a rule inside a device's section", async () => {
    await withConfig(`${SECTIONS}surplus.pump.on-watts = 800\n`, async (path) => {
      await assert.rejects(
        async () => surplusConfig(await parsed(command, ["--config", path], io())),
        (err) => err instanceof ConfigError && err.message.startsWith(`${path}:5: `),
      );
    });
  });
});

/** A poller that polls when the test says so. */
class StubPoller {
  #listeners = new Set<PollListener>();
  listen(listener: PollListener) {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
  latest() {
    return undefined;
  }
  async poll(at: number, reading: Reading | undefined) {
    const event =
      (reading
        ? { ok: true, at, answers: [], reading, up: true, upChanged: false }
        : { ok: false, at, error: "down", failures: 1, up: true, upChanged: false }) as PollEvent;
    for (const listener of this.#listeners) await listener(event);
  }
}

Deno.test("siteSurplus() follows every device's poller", async (t) => {
  const garage = new StubPoller();
  const house = new StubPoller();
  const site = {
    named: true,
    devices: [
      { name: "garage", poller: garage },
      { name: "house", poller: house },
    ],
  } as unknown as Parameters<typeof siteSurplus>[1];
  const surplus = siteSurplus(
    { surplus: SURPLUS, rules: [rule("boiler", "site", 2500), rule("pump", "garage", 800)] },
    site,
    30_000,
  );
  const published: [string | undefined, number | undefined][] = [];
  const stop = surplus.follow((device, state) => void published.push([device, state.powerW]));

  await t.step("should publish each device's surplus, then the site's", async () => {
    await garage.poll(0, reading(-1000));
    await house.poll(1_000, reading(-600));
    // The site's queue runs beside the polls.
    await waitFor(() => published.length >= 4, { what: "the site's surplus published" });
    assert.deepEqual(published, [
      ["garage", 900],
      [undefined, undefined],
      ["house", 500],
      [undefined, 1500],
    ]);
  });

  await t.step("should show a document per device and the site's", () => {
    assert.equal(surplus.documentOf("garage")!.watts, 900);
    assert.deepEqual(surplus.documentOf("garage")!.rules.map((r) => r.name), ["pump"]);
    assert.equal(surplus.documentOf(undefined)!.watts, 1500);
    assert.deepEqual(surplus.documentOf(undefined)!.rules.map((r) => r.name), ["boiler"]);
    assert.equal(surplus.documentOf("shed"), undefined);
    assert.equal(surplus.documentOf("house"), surplus.documentOf("house"));
  });

  await t.step("should stop following", async () => {
    stop();
    await garage.poll(2_000, reading(-5000));
    assert.equal(surplus.documentOf("garage")!.watts, 900);
  });
});
