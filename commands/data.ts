/**
 * `ess data`: read the device's live state.
 *
 * @module
 */
import { detectFamily, FAMILY_NAMES, fieldsText, normalise } from "../lib/model/normalise.ts";
import { UsageError } from "../lib/errors.ts";
import { isStateName, STATE_NAMES, type StateName } from "../lib/device/states.ts";
import { probeFingerprint } from "../lib/device/transport.ts";
import {
  choose,
  defineCommand,
  DEVICE_OPTIONS,
  DEVICE_SELECT_OPTION,
  GENERAL_OPTIONS,
} from "./_cli.ts";
import { deviceHost, openDevice } from "./_device.ts";
import { chosenDevice } from "./_devices.ts";
import { DATA_FORMATS, renderData } from "./_format.ts";

/** Parses `--only home,common`. */
function parseStates(text: string | undefined): StateName[] {
  if (text === undefined) return STATE_NAMES;
  const names = text.split(",").map((s) => s.trim()).filter(Boolean);
  for (const name of names) {
    if (!isStateName(name)) {
      throw new UsageError(
        `unknown state ${JSON.stringify(name)}: one of ${STATE_NAMES.join(", ")}`,
      );
    }
  }
  if (names.length === 0) throw new UsageError(`--only needs one of ${STATE_NAMES.join(", ")}`);
  return names as StateName[];
}

const command = defineCommand({
  name: "data",
  usage: "data [--only STATES] [--format json|table|flat|reading|reading-json]",
  description: "Reads the device's states and prints them with the values exactly as the device " +
    "sent them.\nStates: " + STATE_NAMES.join(", ") + ".",
  options: [
    {
      name: "only",
      type: "string",
      arg: "STATES",
      help: "comma-separated states to read (default: all)",
      config: false,
    },
    {
      name: "format",
      type: "string",
      arg: "FORMAT",
      help: "json (as the device sent it), table (with the meaning of codes), flat " +
        "(home/statistics/load_power 376), reading (what ess makes of it: SI units and words), " +
        "or reading-json",
      default: "json",
      config: false,
    },
    {
      name: "show-fingerprint",
      type: "boolean",
      help: "print the device certificate's SHA-256 fingerprint, to pin with --fingerprint",
      config: false,
    },
    DEVICE_SELECT_OPTION,
    ...DEVICE_OPTIONS,
    ...GENERAL_OPTIONS,
  ],
  examples: [
    "ess data --host 192.168.1.20 --password a1b2c3d4e5f6",
    "ess data --only home,batt --format table",
    "ess data --format reading",
    "ess data --host 192.168.1.20 --show-fingerprint",
    "ess data --device garage --format reading",
  ],
  async run(p, io) {
    const states = parseStates(p.string("only"));
    const format = choose(p.string("format"), DATA_FORMATS, "format");
    const device = chosenDevice(p, p.string("device")).p;
    if (p.flag("show-fingerprint")) {
      const host = await deviceHost(device);
      const timeoutMs = (device.seconds("timeout") ?? 10) * 1000;
      io.out(`${await probeFingerprint(host.hostname, host.port, timeoutMs)}\n`);
      return 0;
    }
    const session = await openDevice(device, { retryOnce: true });
    try {
      const data = await session.client.readAll(states);
      const family = detectFamily(data);
      if (family === "home15" || family === "home5") {
        p.log.info(`${session.host.authority} looks like an ${FAMILY_NAMES[family]}`);
      }
      const { unknownFields } = normalise(data);
      if (unknownFields.length > 0) {
        p.log.warning(
          `${session.host.authority} sent fields ess does not understand (${
            FAMILY_NAMES[family]
          }); they are shown as sent, without units: ${fieldsText(unknownFields)}`,
        );
      }
      io.out(renderData(data, format));
    } finally {
      session.close();
    }
    return 0;
  },
});

export default command;
