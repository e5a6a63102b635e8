/**
 * Two private network namespaces joined by a veth pair, for tests that send multicast. The veth
 * pair is created inside the first namespace with its peer moved straight into the second, so
 * the host's own namespace never sees an interface, an address or a packet of the test.
 *
 * @module
 */

async function run(cmd: string, args: string[]): Promise<Deno.CommandOutput> {
  return await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
}

async function ip(...args: string[]): Promise<void> {
  const out = await run("ip", args);
  if (!out.success) {
    throw new Error(`ip ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
}

/** Why namespaces cannot be made here (not root, no `ip`), or `undefined` when they can. */
export async function netnsUnavailable(): Promise<string | undefined> {
  if (Deno.uid() !== 0) return "needs root";
  try {
    if (!(await run("ip", ["-V"])).success) return "needs iproute2's ip";
  } catch {
    return "needs iproute2's ip";
  }
  const probe = `ess-p-${Deno.pid}`;
  if (!(await run("ip", ["netns", "add", probe])).success) {
    return "cannot create network namespaces here";
  }
  await run("ip", ["netns", "del", probe]);
  return undefined;
}

/** One end of the pair: its namespace and IPv4 address. */
export interface NetnsEnd {
  ns: string;
  address: string;
}

/** Two namespaces that see each other (and multicast) over a /24, and nothing else. */
export interface NetnsPair {
  a: NetnsEnd;
  b: NetnsEnd;
  /** Deletes both namespaces (and with them the veth pair). */
  close(): Promise<void>;
}

/**
 * Creates namespaces `<prefix>-a` and `<prefix>-b` with addresses `<subnet>.1` and `<subnet>.2`
 * (`subnet` like `10.213.2`), multicast routed over the pair.
 */
export async function createNetnsPair(prefix: string, subnet: string): Promise<NetnsPair> {
  const a = { ns: `${prefix}-a`, address: `${subnet}.1` };
  const b = { ns: `${prefix}-b`, address: `${subnet}.2` };
  const close = async () => {
    await run("ip", ["netns", "del", a.ns]);
    await run("ip", ["netns", "del", b.ns]);
  };
  try {
    await ip("netns", "add", a.ns);
    await ip("netns", "add", b.ns);
    const [devA, devB] = [`${prefix}-va`.slice(-15), `${prefix}-vb`.slice(-15)];
    await ip("-n", a.ns, "link", "add", devA, "type", "veth", "peer", "name", devB, "netns", b.ns);
    for (const [end, dev] of [[a, devA], [b, devB]] as const) {
      await ip("-n", end.ns, "addr", "add", `${end.address}/24`, "dev", dev);
      await ip("-n", end.ns, "link", "set", "lo", "up");
      await ip("-n", end.ns, "link", "set", dev, "up");
      await ip("-n", end.ns, "route", "add", "224.0.0.0/4", "dev", dev);
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { a, b, close };
}
