/**
 * The Home Assistant add-on's files against the Supervisor's rules for them: the keys it
 * requires, the architectures it knows, the option types of its schema language, and what ess
 * itself needs (its version, its option names, the ingress port it serves).
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { parse } from "yaml";
import denoJson from "../deno.json" with { type: "json" };
import { isDeviceKey, isKnownKey } from "../commands/_registry.ts";
import { DEVICE_NAME } from "../lib/config.ts";
import { ADDON_DEVICE_KEYS, ADDON_DEVICES_OPTION } from "../lib/hass/addon.ts";
import { runFlags } from "../image/build.ts";

const ROOT = new URL("../", import.meta.url);
const read = (path: string) => Deno.readTextFile(new URL(path, ROOT));
const yamlOf = async (path: string) => parse(await read(path)) as Record<string, unknown>;

/** The architectures the Supervisor knows, and those Deno (so ess) runs on. */
const SUPERVISOR_ARCHES = ["armhf", "armv7", "aarch64", "amd64", "i386"];
const ESS_ARCHES = ["amd64", "aarch64"];

/** One option type of the Supervisor's schema language, `?` for optional. */
const OPTION_TYPE = new RegExp(
  "^(?:str(?:\\(\\d*,\\d*\\))?|bool|int(?:\\(-?\\d*,-?\\d*\\))?|float(?:\\([-\\d.]*,[-\\d.]*\\))?" +
    "|email|url|password|port|device(?:\\(.*\\))?|match\\(.+\\)|list\\([^|()]+(?:\\|[^|()]+)*\\))" +
    "\\??$",
);

/** A schema entry: one type, or a list of values of one type or of one dict of types. */
type SchemaEntry = string | [string | Record<string, string>];

/** The types a schema entry holds: itself, or its list's element's (each field's). */
function typesOf(entry: SchemaEntry): [string, string][] {
  if (typeof entry === "string") return [["", entry]];
  const [element] = entry;
  return typeof element === "string" ? [["", element]] : Object.entries(element);
}

/**
 * Whether `value` fits the schema entry, as the Supervisor validates an option: a list takes
 * values of its element's type, or dicts whose every field fits and whose every field without
 * `?` is there.
 */
function fitsEntry(entry: SchemaEntry, value: unknown): boolean {
  if (typeof entry === "string") return fits(entry, value);
  if (!Array.isArray(value)) return false;
  const [element] = entry;
  if (typeof element === "string") return value.every((v) => fits(element, v));
  return value.every((item) =>
    typeof item === "object" && item !== null &&
    Object.entries(item).every(([k, v]) => k in element && fits(element[k]!, v)) &&
    Object.entries(element).every(([k, type]) => type.endsWith("?") || k in item)
  );
}

/** Whether `value` fits the schema type `type`, as the Supervisor validates an option. */
function fits(type: string, value: unknown): boolean {
  const base = type.replace(/\?$/, "");
  const range = /\((-?[\d.]*),(-?[\d.]*)\)$/.exec(base);
  const within = (n: number) =>
    (!range?.[1] || n >= Number(range[1])) && (!range?.[2] || n <= Number(range[2]));
  if (base.startsWith("str") || base === "password") return typeof value === "string";
  if (base === "bool") return typeof value === "boolean";
  if (base.startsWith("int")) return Number.isInteger(value) && within(value as number);
  if (base.startsWith("float")) return typeof value === "number" && within(value);
  if (base === "port") return Number.isInteger(value) && within(value as number);
  const list = /^list\((.*)\)$/.exec(base);
  if (list) return list[1]!.split("|").includes(value as string);
  return typeof value === "string";
}

Deno.test("the add-on's config.yaml follows the Supervisor's rules", async (t) => {
  const config = await yamlOf("ha-addon/config.yaml");

  await t.step("should have every required key", () => {
    for (const key of ["name", "version", "slug", "description", "arch"]) {
      ok(config[key] !== undefined && config[key] !== "", `config.yaml needs ${key}`);
    }
    match(String(config["slug"]), /^[-_.a-z0-9]+$/);
    equal(typeof config["version"], "string", "the version must be a string, quoted");
  });

  await t.step("should carry ess's version, which tags the image", () => {
    equal(config["version"], denoJson.version);
    match(String(config["image"]), /^ghcr\.io\/[^/]+\/ess-addon$/);
  });

  await t.step("should list exactly the architectures ess runs on", () => {
    const arches = config["arch"] as string[];
    ok(arches.every((a) => SUPERVISOR_ARCHES.includes(a)), `unknown arch in ${arches}`);
    deepEqual([...arches].sort(), [...ESS_ARCHES].sort());
  });

  await t.step("should take its values from the Supervisor's vocabularies", () => {
    ok(["initialize", "system", "services", "application", "once"].includes(
      config["startup"] as string,
    ));
    ok(["auto", "manual", "manual_only"].includes(config["boot"] as string));
    for (const service of config["services"] as string[]) {
      match(service, /^mqtt:(?:provide|want|need)$/);
    }
    equal(config["host_network"], true, "mDNS needs the host's network");
    equal(config["ingress"], true);
    match(
      String(config["watchdog"]),
      /^(?:https?|tcp):\/\/\[HOST\]:\[PORT:\d+\]\/healthz$/,
      "the watchdog asks /healthz",
    );
  });

  await t.step("should give every option a type of the schema language", () => {
    const schema = config["schema"] as Record<string, SchemaEntry>;
    for (const [key, entry] of Object.entries(schema)) {
      ok(typeof entry === "string" || (Array.isArray(entry) && entry.length === 1), key);
      for (const [field, type] of typesOf(entry)) match(type, OPTION_TYPE, `${key} ${field}`);
    }
    const options = config["options"] as Record<string, unknown>;
    for (const [key, value] of Object.entries(options)) {
      ok(key in schema, `option ${key} has no schema`);
      ok(fitsEntry(schema[key]!, value), `option ${key}: ${value} is no ${schema[key]}`);
    }
    for (const [key, entry] of Object.entries(schema)) {
      // A list is never optional to the Supervisor: it needs a default, if only [].
      ok(
        (typeof entry === "string" && entry.endsWith("?")) || key in options,
        `required option ${key} needs a default`,
      );
    }
  });

  await t.step("should name options as ess's config file does", async () => {
    for (const key of Object.keys(config["schema"] as object)) {
      if (key === ADDON_DEVICES_OPTION) continue;
      ok(await isKnownKey(key.replaceAll("_", "-")), `ess has no option ${key}`);
    }
  });

  await t.step("should list several devices as ess's [device NAME] sections do", async () => {
    const schema = config["schema"] as Record<string, SchemaEntry>;
    const [element] = schema[ADDON_DEVICES_OPTION] as [Record<string, string>];
    deepEqual(Object.keys(element).sort(), ["name", ...ADDON_DEVICE_KEYS].sort());
    equal(element["name"], `match(${DEVICE_NAME.source})`, "a name as the config file takes it");
    for (const key of ADDON_DEVICE_KEYS) {
      ok(await isDeviceKey(key), `a [device] section cannot set ${key}`);
    }
    deepEqual((config["options"] as Record<string, unknown>)[ADDON_DEVICES_OPTION], []);
    ok(
      fitsEntry(schema[ADDON_DEVICES_OPTION]!, [
        { name: "garage", host: "192.168.1.20", password: "a1b2c3d4e5f6" },
        { name: "house", host: "192.168.1.21", password: "x", fingerprint: "AB:CD" },
      ]),
    );
    ok(!fitsEntry(schema[ADDON_DEVICES_OPTION]!, [{ name: "garage", host: "h" }]));
  });

  await t.step("should serve ingress only to the Supervisor, on the ingress port", () => {
    const env = config["environment"] as Record<string, string>;
    equal(env["ESS_OPTIONS_FILE"], "/data/options.json");
    equal(env["ESS_LISTEN"], `0.0.0.0:${config["ingress_port"]}`);
    equal(env["ESS_ALLOWED_CLIENTS"], "172.30.32.2");
    equal(env["ESS_ALLOWED_HOSTS"], "*", "the Host is the one the browser gave Home Assistant");
    match(String(config["watchdog"]), new RegExp(`\\[PORT:${config["ingress_port"]}\\]`));
    ok(
      runFlags().some((f) => f.startsWith("--allow-env=") && f.includes("SUPERVISOR_TOKEN")),
      "ess may read SUPERVISOR_TOKEN",
    );
  });
});

Deno.test("the add-on repository has the files the Supervisor and its store show", async (t) => {
  await t.step("should name the repository", async () => {
    const repository = await yamlOf("repository.yaml");
    ok(typeof repository["name"] === "string" && repository["name"] !== "");
  });

  await t.step("should describe every option in translations/en.yaml", async () => {
    const config = await yamlOf("ha-addon/config.yaml");
    const translations = (await yamlOf("ha-addon/translations/en.yaml"))["configuration"] as Record<
      string,
      { name?: string; description?: string }
    >;
    deepEqual(Object.keys(translations).sort(), Object.keys(config["schema"] as object).sort());
    for (const [key, text] of Object.entries(translations)) {
      ok(text.name && text.description, `${key} needs a name and a description`);
    }
  });

  await t.step("should have DOCS.md, a square icon.png and a logo.png", async () => {
    ok((await read("ha-addon/DOCS.md")).startsWith("# "));
    for (const file of ["icon.png", "logo.png"]) {
      const bytes = await Deno.readFile(new URL(`ha-addon/${file}`, ROOT));
      deepEqual([...bytes.subarray(1, 4)], [0x50, 0x4e, 0x47], `${file} is a PNG`);
      const view = new DataView(bytes.buffer, bytes.byteOffset);
      const [width, height] = [view.getUint32(16), view.getUint32(20)];
      if (file === "icon.png") equal(width, height, "the icon is square");
      ok(width >= 100 && width <= 512, `${file} is ${width} px wide`);
    }
  });
});
