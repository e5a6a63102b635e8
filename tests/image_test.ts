/**
 * ess's container image, built and run offline with podman, buildah and runc: on a base image
 * assembled from the host's own glibc (no image can be pulled here), against the simulator and
 * a real mosquitto, configured by a mounted /etc/essmqtt.conf and environment variables, and
 * checked by its own health check. Skipped, with the reason, where podman, buildah, runc or
 * mosquitto are missing.
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { join } from "node:path";
import { buildImage, buildLocalBase, hostArch } from "../image/build.ts";
import { startSimulator } from "../lib/sim/simulator.ts";
import { freePort, mosquittoPath, startMosquitto, watch } from "./_broker.ts";
import { peerCheck } from "./_peers.ts";

/** The first of `programs` that is not installed, if any. */
function missing(programs: readonly string[]): string | undefined {
  const dirs = (Deno.env.get("PATH") ?? "").split(":").concat(["/usr/sbin", "/usr/bin"]);
  return programs.find((p) =>
    !dirs.some((dir) => {
      try {
        return Deno.statSync(join(dir, p)).isFile;
      } catch {
        return false;
      }
    })
  );
}

const absent = missing(["podman", "buildah", "runc"]) ??
  (mosquittoPath() === undefined ? "mosquitto" : undefined);
const podmanPeer = peerCheck("podman", absent && `${absent} is not installed`);
const TITLE = "the container image runs ess mqtt against the simulator and mosquitto";

/** podman as the development machines run it: runc, no systemd, bounded limits. */
const PODMAN = ["--runtime", "runc", "--cgroup-manager=cgroupfs"];
const RUN = ["--network", "host", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"];

async function podman(args: readonly string[]): Promise<{ code: number; out: string }> {
  const result = await new Deno.Command("podman", {
    args: [...PODMAN, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return { code: result.code, out: text.decode(result.stdout) + text.decode(result.stderr) };
}

Deno.test({
  name: `${TITLE}${podmanPeer.label}`,
  ignore: podmanPeer.ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    podmanPeer.assertPresent();
    const id = crypto.randomUUID().slice(0, 8);
    const work = await Deno.makeTempDir({ prefix: "ess-image-" });
    const tag = `localhost/ess-image-test:${id}`;
    const addonTag = `localhost/ess-addon-image-test:${id}`;
    const name = `ess-image-test-${id}`;
    const sim = await startSimulator({ password: `pa!ss#"w'${id}` });
    const broker = await startMosquitto();
    const watcher = await watch(broker.url);
    const port = freePort();
    try {
      await t.step("should build on a glibc base assembled from this host's files", async () => {
        const base = await buildLocalBase(join(work, "base"), `localhost/ess-base-test:${id}`);
        await buildImage({
          platforms: [`linux/${hostArch()}`],
          tag,
          base,
          addon: false,
          workDir: work,
        });
        const user = await podman(["image", "inspect", tag, "--format", "{{.Config.User}}"]);
        equal(user.out.trim(), "65532", "a non-root user");
        const size = await podman(["image", "inspect", tag, "--format", "{{.Size}}"]);
        ok(Number(size.out) > 0, size.out);
      });

      await t.step("should bridge the simulator to MQTT from a mounted config file", async () => {
        const config = join(work, "essmqtt.conf");
        await Deno.writeTextFile(
          config,
          `ess_host = ${sim.host}\ness_password = ${sim.password}\n` +
            `fingerprint = ${sim.fingerprint}\ninterval_seconds = 5\n`,
        );
        await Deno.chmod(config, 0o644);
        const started = await podman([
          "run",
          "--detach",
          "--name",
          name,
          ...RUN,
          "--health-interval=disable",
          "--volume",
          `${config}:/etc/essmqtt.conf:ro`,
          "--env",
          `MQTT_SERVER=${broker.url}`,
          "--env",
          `ESS_LISTEN=127.0.0.1:${port}`,
          tag,
        ]);
        equal(started.code, 0, started.out);
        const topic = "ess/home/statistics/pcs_pv_total_power";
        await watcher.until(
          () => watcher.last.has(topic) && watcher.last.get("ess/status")?.payload === "online",
          `${topic} from the container`,
          30_000,
        ).catch(async (err) => {
          throw new Error(`${err.message}\n${(await podman(["logs", name])).out}`);
        });
        match(watcher.last.get(topic)!.payload, /^\d+(\.\d+)?$/);
      });

      await t.step("should pass its own health check", async () => {
        const health = await podman(["healthcheck", "run", name]);
        equal(health.code, 0, health.out);
        const direct = await podman(["exec", name, "/usr/local/bin/deno", "--version"]);
        ok(direct.code === 0, direct.out);
      });

      await t.step(
        "should read a root-only /data/options.json in the add-on's variant",
        async () => {
          await buildImage({
            platforms: [`linux/${hostArch()}`],
            tag: addonTag,
            base: `localhost/ess-base-test:${id}`,
            addon: true,
            workDir: work,
          });
          const options = join(work, "options.json");
          await Deno.writeTextFile(
            options,
            JSON.stringify({
              ess_host: sim.host,
              ess_password: sim.password,
              fingerprint: sim.fingerprint,
            }),
          );
          await Deno.chmod(options, 0o600);
          const data = await podman([
            "run",
            "--rm",
            ...RUN,
            "--health-interval=disable",
            "--volume",
            `${options}:/data/options.json:ro`,
            "--env",
            "ESS_OPTIONS_FILE=/data/options.json",
            addonTag,
            "data",
            "--only",
            "home",
            "--format",
            "flat",
          ]);
          equal(data.code, 0, data.out);
          match(data.out, /statistics\/pcs_pv_total_power/);
        },
      );

      await t.step("should stop on SIGTERM with offline on ess/status", async () => {
        const stopped = await podman(["stop", "--time", "10", name]);
        equal(stopped.code, 0, stopped.out);
        await watcher.until(
          () => watcher.last.get("ess/status")?.payload === "offline",
          "offline on ess/status",
        );
        const code = await podman(["inspect", name, "--format", "{{.State.ExitCode}}"]);
        equal(code.out.trim(), "0");
        const logs = await podman(["logs", name]);
        const foreign = logs.out.split("\n").filter((l) => l !== "" && !l.startsWith("ess: "));
        deepEqual(foreign, [], "only ess's own lines: no warning of Deno's about its cache");
      });
    } finally {
      await podman(["rm", "--force", name]);
      await podman(["rmi", "--force", tag, addonTag, `localhost/ess-base-test:${id}`]);
      await watcher.close();
      await broker.close();
      await sim.close();
      await Deno.remove(work, { recursive: true });
    }
  },
});
