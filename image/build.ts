/**
 * `deno task image`: builds ess's container image with buildah, for x86_64 (amd64) and aarch64
 * (arm64). `deno compile` needs Deno's runtime from the internet, so the image carries Deno's
 * own binary (the `@deno/linux-*-glibc` npm package's, the host's own for its architecture),
 * ess's sources and the npm packages they import, and runs `deno run` with the flags of
 * run-flags.txt.
 *
 * ```sh
 * deno task image                                   # this machine's architecture, tag ess:dev
 * deno task image --platform linux/amd64,linux/arm64 --manifest ghcr.io/OWNER/ess:0.1.0
 * deno task image --local-base                      # offline: a base made of the host's glibc
 * deno task image --addon --tag ess-addon:dev       # the add-on's variant, running as root
 * ```
 *
 * @module
 */
import { cpSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** The files of ess the image runs. */
const APP_FILES = ["main.ts", "deno.json", "deno.lock", "run-flags.txt", "commands", "lib"];

/** Deno's architecture names and the container's. */
const ARCHES: Readonly<Record<string, string>> = { x86_64: "amd64", aarch64: "arm64" };
/** The npm package carrying Deno's binary for each container architecture. */
const DENO_PACKAGES: Readonly<Record<string, string>> = {
  amd64: "@deno/linux-x64-glibc",
  arm64: "@deno/linux-arm64-glibc",
};

/** The default base: distroless's glibc image, as its nonroot user. */
export const DEFAULT_BASE = "gcr.io/distroless/cc-debian12:nonroot";

/** Runs a program; throws with its stderr when it fails. Returns its stdout. */
async function run(cmd: string, args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed:\n${new TextDecoder().decode(out.stderr)}`);
  }
  return text;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The host's container architecture. */
export function hostArch(): string {
  const arch = ARCHES[Deno.build.arch];
  if (!arch) throw new Error(`no image for ${Deno.build.arch}`);
  return arch;
}

/** The flags of run-flags.txt, one per element. */
export function runFlags(): string[] {
  return Deno.readTextFileSync(join(ROOT, "run-flags.txt")).trim().split(/\s+/);
}

/** The Containerfile with run-flags.txt's flags in place of "@RUN_FLAGS@". */
export function containerfile(): string {
  const text = Deno.readTextFileSync(join(ROOT, "image/Containerfile"));
  return text.replaceAll('"@RUN_FLAGS@"', runFlags().map((f) => JSON.stringify(f)).join(", "));
}

interface InfoGraph {
  modules: { specifier: string; npmPackage?: string }[];
  npmPackages: Record<string, { name: string; version: string; dependencies: string[] }>;
}

/** The npm packages main.ts's graph reaches (`name@version`), with their dependencies. */
async function npmPackages(): Promise<{ name: string; version: string }[]> {
  const info: InfoGraph = JSON.parse(
    await run(Deno.execPath(), ["info", "--json", join(ROOT, "main.ts")]),
  );
  const seen = new Set<string>();
  const visit = (id: string) => {
    if (seen.has(id) || !info.npmPackages[id]) return;
    seen.add(id);
    for (const dep of info.npmPackages[id].dependencies) visit(dep);
  };
  for (const m of info.modules) if (m.npmPackage) visit(m.npmPackage);
  return [...seen].map((id) => info.npmPackages[id]!);
}

/** The DENO_DIR this host uses, where the npm packages are cached. */
async function denoDir(): Promise<string> {
  const info = JSON.parse(await run(Deno.execPath(), ["info", "--json"]));
  return info.denoDir;
}

/** Deno's binary for `arch` into `dest`: the host's own, or the npm package's (needs npm). */
async function fetchDeno(arch: string, dest: string, work: string): Promise<void> {
  mkdirSync(dirname(dest), { recursive: true });
  if (arch === hostArch()) {
    cpSync(Deno.execPath(), dest);
    return;
  }
  const spec = `${DENO_PACKAGES[arch]}@${Deno.version.deno}`;
  const name = (await run("npm", ["pack", "--silent", spec, "--pack-destination", work])).trim();
  await run("tar", ["-xzf", join(work, name), "-C", work]);
  cpSync(join(work, "package/deno"), dest);
  rmSync(join(work, "package"), { recursive: true });
}

/** Writes the build context into `dir`: the Containerfile, ess, Deno and the npm packages. */
export async function stageContext(dir: string, arches: readonly string[]): Promise<void> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, "app"), { recursive: true });
  writeFileSync(join(dir, "Containerfile"), containerfile());
  for (const file of APP_FILES) {
    cpSync(join(ROOT, file), join(dir, "app", file), { recursive: true });
  }
  const cache = join(await denoDir(), "npm/registry.npmjs.org");
  for (const { name, version } of await npmPackages()) {
    const target = join(dir, "deno-dir/npm/registry.npmjs.org", name);
    cpSync(join(cache, name, version), join(target, version), { recursive: true });
    const registry = join(cache, name, "registry.json");
    if (exists(registry)) cpSync(registry, join(target, "registry.json"));
  }
  for (const arch of arches) await fetchDeno(arch, join(dir, "deno", arch, "deno"), dir);
}

/**
 * Builds a base image from nothing but this host's files: the glibc libraries Deno's binary
 * links (as `ldd` lists them), an /etc/passwd with distroless's nonroot user (65532) and /tmp.
 * It stands in for distroless/cc where no image can be pulled; returns its name.
 */
export async function buildLocalBase(dir: string, tag: string): Promise<string> {
  const rootfs = join(dir, "rootfs");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(rootfs, "etc"), { recursive: true });
  mkdirSync(join(rootfs, "tmp"), { recursive: true, mode: 0o1777 });
  Deno.chmodSync(join(rootfs, "tmp"), 0o1777);
  const libraries = (await run("ldd", [Deno.execPath()])).matchAll(/(\/\S+)\s+\(0x/g);
  for (const [, path] of libraries) {
    mkdirSync(join(rootfs, dirname(path!)), { recursive: true });
    cpSync(Deno.realPathSync(path!), join(rootfs, path!));
  }
  writeFileSync(
    join(rootfs, "etc/passwd"),
    "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
  );
  writeFileSync(join(rootfs, "etc/group"), "root:x:0:\nnonroot:x:65532:\n");
  writeFileSync(join(dir, "Containerfile"), "FROM scratch\nCOPY rootfs/ /\n");
  await run("buildah", ["build", "--quiet", "--tag", tag, dir]);
  return tag;
}

/** What {@link buildImage} builds. */
export interface ImageOptions {
  /** `linux/amd64`, `linux/arm64`. */
  platforms: readonly string[];
  /** The image's name; with several platforms, the manifest list's. */
  tag: string;
  /** The base image (glibc). */
  base: string;
  /** The add-on's variant: runs as root, to read the Supervisor's /data/options.json. */
  addon: boolean;
  /** Where the context is staged. */
  workDir: string;
}

/** Stages the context and builds the image (or, for several platforms, a manifest list). */
export async function buildImage(options: ImageOptions): Promise<void> {
  const arches = options.platforms.map((p) => {
    const arch = p.replace(/^linux\//, "");
    if (!DENO_PACKAGES[arch]) throw new Error(`unknown platform ${p}: linux/amd64 or linux/arm64`);
    return arch;
  });
  const context = join(options.workDir, "context");
  await stageContext(context, arches);
  const args = [
    "build",
    "--format",
    "docker",
    "--build-arg",
    `BASE=${options.base}`,
    ...(options.addon ? ["--build-arg", "ESS_USER=0"] : []),
    "--platform",
    options.platforms.join(","),
    ...(options.platforms.length > 1 ? ["--manifest", options.tag] : ["--tag", options.tag]),
    context,
  ];
  await run("buildah", args);
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      platform: { type: "string", default: `linux/${hostArch()}` },
      tag: { type: "string" },
      manifest: { type: "string" },
      base: { type: "string", default: DEFAULT_BASE },
      "local-base": { type: "boolean", default: false },
      addon: { type: "boolean", default: false },
    },
  });
  const workDir = join(ROOT, "dist/image");
  const base = values["local-base"]
    ? await buildLocalBase(join(workDir, "base"), `localhost/ess-glibc-base:${hostArch()}`)
    : values.base;
  const tag = values.manifest ?? values.tag ?? (values.addon ? "ess-addon:dev" : "ess:dev");
  await buildImage({
    platforms: values.platform.split(","),
    tag,
    base,
    addon: values.addon,
    workDir,
  });
  // deno-lint-ignore no-console
  console.log(`built ${tag} (${values.platform}) on ${base}`);
}
