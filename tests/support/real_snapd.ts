/**
 * Debian's real snapd (2.57.x) for tests, under a private root (`SNAPPY_GLOBAL_ROOT`): its socket, state, units
 * and snap mounts all live below one temporary directory, so it never touches the machine's own snapd.
 *
 * What it takes (see docs/protocol.md, "Running the real snapd in tests"): root and loop devices (snaps are
 * squashfs images, mounted by a `systemctl` stand-in first on snapd's PATH, since there is no systemd); a no-op
 * `udevadm`; `SNAPD_STANDBY_WAIT` so that it does not exit when idle; a loop around it, because it exits to be
 * restarted (after installing the `snapd` snap, for one); and the `snapd` snap itself, repacked from the Debian
 * package, because a snap on a base other than `core` needs it. The store is unreachable: store-facing calls fail
 * with snapd's own errors.
 *
 * Where snapd cannot run (not root, no loop device, no snapd package) `unavailable()` says why; tests named
 * `real snapd: …` are then skipped with that one line — unless CI=true, where it is a failure.
 */
import { needs } from "./requirement.ts";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildTestSnaps, type TestSnaps } from "./test_snaps.ts";

const SNAPD = "/usr/lib/snapd/snapd";
const STANDIN_DIR = fileURLToPath(new URL("./real_snapd/", import.meta.url));

/** Why the real snapd cannot run here, or undefined when it can. */
export async function unavailable(): Promise<string | undefined> {
  if (Deno.build.os !== "linux") return "not Linux";
  if (Deno.uid() !== 0) return "not root (snapd and loop mounts need root)";
  if (!(await exists(SNAPD))) {
    return `${SNAPD} is missing (apt-get install snapd squashfs-tools busybox-static)`;
  }
  for (const tool of ["snap", "mksquashfs", "busybox", "mount", "losetup"]) {
    if (!(await which(tool))) {
      return `${tool} is missing (apt-get install snapd squashfs-tools busybox-static)`;
    }
  }
  if (!(await exists("/dev/loop-control"))) return "no loop devices (/dev/loop-control is missing)";
  const probe = await run("losetup", ["-f"]);
  if (!probe.ok) return `no free loop device: ${probe.stderr.trim()}`;
  return undefined;
}

/**
 * Test options for a real-snapd test: ignored, with one line saying why, where snapd cannot run — except under
 * CI=true, where the test runs and fails.
 */
export async function realSnapdTest(): Promise<{ ignore: boolean }> {
  return needs("real snapd tests", await unavailable());
}

/** A running snapd under a private root, with the test snaps installed. */
export class RealSnapd {
  readonly root: string;
  readonly snaps: TestSnaps;
  #loop: Deno.ChildProcess | undefined;
  readonly #log: string[] = [];

  private constructor(root: string, snaps: TestSnaps) {
    this.root = root;
    this.snaps = snaps;
  }

  /** The REST socket. */
  get socketPath(): string {
    return join(this.root, "run/snapd.socket");
  }

  /** snapd's output so far. */
  get log(): string[] {
    return this.#log;
  }

  /**
   * Starts snapd, waits until it is seeded, and installs the `snapd` snap, the busybox base and `install` (by
   * test snap name, e.g. `["peer-svc", "peer-nohook"]`); `fillers` builds that many filler snaps to install too
   * (`fillerNames`).
   * @throws when snapd cannot run here (see `unavailable()`)
   */
  static async start(install: string[] = [], options: { fillers?: number } = {}): Promise<RealSnapd> {
    const reason = await unavailable();
    if (reason) throw new Error(`the real snapd cannot run here: ${reason}`);
    const snaps = await buildTestSnaps(options.fillers);
    const root = await Deno.makeTempDir({ prefix: "real-snapd-" });
    for (
      const dir of [
        "run",
        "usr/lib",
        "var/lib/snapd/snaps",
        "var/lib/snapd/lib/gl",
        "var/snap",
        "var/cache/snapd",
        "etc/systemd/system",
        "snap",
      ]
    ) await Deno.mkdir(join(root, dir), { recursive: true });
    await Deno.symlink("/usr/lib/snapd", join(root, "usr/lib/snapd"));
    const snapd = new RealSnapd(root, snaps);
    // a run that skips stop() (a filter, a crash) must not leave snapd running or snaps mounted behind it
    new Deno.Command(join(STANDIN_DIR, "guardian"), {
      args: [String(Deno.pid), root],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn().unref();
    snapd.#startLoop();
    await snapd.ready();
    await snapd.install("snapd"); // snapd restarts itself after this one
    await snapd.ready();
    await snapd.install("peer-bbbase");
    for (const name of install) await snapd.install(name);
    return snapd;
  }

  /** The environment for the `snap` command line against this snapd. */
  get env(): Record<string, string> {
    return {
      SNAPPY_GLOBAL_ROOT: this.root,
      SNAP_REEXEC: "0",
      PATH: `${STANDIN_DIR}:${Deno.env.get("PATH")}`,
    };
  }

  /** Runs `snap ARGS` against this snapd. @throws with its output when it fails */
  async snap(...args: string[]): Promise<string> {
    const result = await run("snap", args, this.env);
    if (!result.ok) {
      throw new Error(`snap ${args.join(" ")}: ${result.stderr.trim() || result.stdout.trim()}`);
    }
    return result.stdout;
  }

  /** Installs a test snap (from its built .snap file, `--dangerous`, `--devmode` where it needs it). */
  async install(name: string): Promise<void> {
    const snap = this.snaps.get(name);
    await this.snap("install", "--dangerous", ...(snap.devmode ? ["--devmode"] : []), snap.file);
  }

  /** Resolves once snapd answers and is seeded. */
  async ready(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const result = await run("snap", ["wait", "system", "seed.loaded"], this.env);
      if (result.ok) return;
      if (Date.now() > deadline) {
        throw new Error(`snapd did not come up: ${result.stderr}\n${this.#log.slice(-20).join("\n")}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /** Stops snapd the way a refresh of snapd does (it exits, the loop starts it again); resolves when it is back. */
  async restart(): Promise<void> {
    await this.#signalOurs("SIGTERM");
    await this.ready();
  }

  /** Stops snapd for good, unmounts every snap and removes the root. */
  async stop(): Promise<void> {
    await Deno.writeTextFile(join(this.root, "run/stop"), "");
    await this.#signalOurs("SIGTERM");
    await this.#loop?.status;
    const mounts = (await Deno.readTextFile("/proc/self/mounts")).split("\n")
      .map((line) => line.split(" ")[1])
      .filter((point) => point?.startsWith(this.root))
      .sort((a, b) => b.length - a.length);
    for (const point of mounts) await run("umount", ["-l", point], {});
    await Deno.remove(this.root, { recursive: true }).catch(() => {});
  }

  #startLoop(): void {
    const stopFile = join(this.root, "run/stop");
    const script = `while [ ! -e ${stopFile} ]; do ${SNAPD}; sleep 0.2; done`;
    this.#loop = new Deno.Command("bash", {
      args: ["-c", script],
      env: {
        ...this.env,
        SNAPD_STANDBY_WAIT: "24h",
        SYSTEMCTL_STANDIN_LOG: join(this.root, "run/systemctl.log"),
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    for (const stream of [this.#loop.stdout, this.#loop.stderr]) {
      (async () => {
        for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
          for (const line of chunk.split("\n")) if (line) this.#log.push(line);
          if (Deno.env.get("TEST_VERBOSE")) console.error(`[snapd] ${chunk.trimEnd()}`);
        }
      })();
    }
  }

  /** Signals the snapd process of this root (found by its environment), not the machine's own snapd. */
  #signalOurs(signal: Deno.Signal): Promise<void> {
    for (const pid of this.#ourPids()) Deno.kill(pid, signal);
    return Promise.resolve();
  }

  #ourPids(): number[] {
    const pids: number[] = [];
    for (const entry of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(entry.name)) continue;
      try {
        if (Deno.readLinkSync(`/proc/${entry.name}/exe`) !== SNAPD) continue;
        const environ = Deno.readTextFileSync(`/proc/${entry.name}/environ`);
        if (environ.split("\0").includes(`SNAPPY_GLOBAL_ROOT=${this.root}`)) pids.push(Number(entry.name));
      } catch { /* gone, or not ours to read */ }
    }
    return pids;
  }
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

async function which(tool: string): Promise<boolean> {
  return (await run("sh", ["-c", `command -v ${tool}`], {})).ok;
}

/** Runs a command to completion. */
export async function run(
  command: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  try {
    const output = await new Deno.Command(command, {
      args,
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
    return { ok: output.success, stdout: decode(output.stdout), stderr: decode(output.stderr) };
  } catch (error) {
    return { ok: false, stdout: "", stderr: (error as Error).message };
  }
}
