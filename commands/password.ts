/**
 * `ess password`: read the device password on the device's own Wi-Fi.
 *
 * @module
 */
import { readDevicePassword } from "../lib/device/client.ts";
import { DEVICE_WIFI_HOST } from "../lib/device/states.ts";
import { defineCommand, DEVICE_OPTIONS, GENERAL_OPTIONS } from "./_cli.ts";
import { deviceFetch, parseHostPort } from "./_device.ts";

const command = defineCommand({
  name: "password",
  usage: "password [--host 192.168.23.1]",
  description: "Connect this computer to the ESS's own Wi-Fi access point (LGE_ESS-…) first.\n" +
    "The password is static: write it down once and give it to the other commands.",
  options: [
    // No --name: mDNS cannot find the device on its own Wi-Fi, where it is always 192.168.23.1.
    ...DEVICE_OPTIONS.filter((o) => o.name === "fingerprint" || o.name === "timeout"),
    {
      name: "host",
      aliases: ["ess-host"],
      type: "string",
      arg: "HOST[:PORT]",
      help: "the ESS on its own Wi-Fi",
      default: DEVICE_WIFI_HOST,
      config: false,
      group: "Device",
    },
    ...GENERAL_OPTIONS,
  ],
  examples: ["ess password", "ess password --host 192.168.23.1"],
  async run(p, io) {
    const host = parseHostPort(p.string("host") ?? DEVICE_WIFI_HOST, 443);
    const fetch = deviceFetch(p);
    try {
      io.out(`${await readDevicePassword(fetch, host.authority)}\n`);
    } finally {
      fetch.close();
    }
    return 0;
  },
});

export default command;
