/**
 * Prometheus's tools for the `/metrics` tests (Debian's `prometheus` package): where they are,
 * and `promtool check metrics` on a text.
 *
 * @module
 */

/** The path of `name` on the PATH (or in /usr/bin), if it is installed. */
export function which(name: string): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":").concat(["/usr/bin"])) {
    try {
      if (Deno.statSync(`${dir}/${name}`).isFile) return `${dir}/${name}`;
    } catch {
      continue;
    }
  }
  return undefined;
}

/** `promtool`, if it is installed. */
export const PROMTOOL: string | undefined = which("promtool");

/** `promtool check metrics` on `text`: its exit code and everything it wrote. */
export async function promtoolCheck(text: string): Promise<{ code: number; output: string }> {
  const child = new Deno.Command(PROMTOOL!, {
    args: ["check", "metrics"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code, output: decode(stdout) + decode(stderr) };
}
