/**
 * The small local snaps the real-snapd tests install, built with `snap pack` once per machine (cached in the
 * temporary directory, keyed by this file's recipe version and snapd's version):
 * - `snapd`: the Debian package's files as a `type: snapd` snap (a base other than `core` needs it);
 * - `peer-bbbase`: a base of busybox (`bin/busybox`, `bin/sh`);
 * - `peer-svc`: an app with a daemon (`peer-svc.daemon`) and a command (`peer-svc.hello`), no configure hook
 *   (snapd ends `setconf` on it in Error, as on a device);
 * - `peer-filler-a`, `-b`, `-c`: plain apps, so that lists have more than one entry.
 * All apps are devmode: without AppArmor snapd refuses strict confinement. No snap has hooks: snapd runs a hook
 * through snap-confine, which needs the host's mount namespace (`/proc/1/ns/mnt`), and a container denies it —
 * every install of a snap with a configure hook fails there.
 */
import { join } from "node:path";
import { run } from "./real_snapd.ts";

/** A built snap. */
export interface TestSnap {
  name: string;
  file: string;
  devmode: boolean;
}

/** The built snaps by name. */
export interface TestSnaps {
  get(name: string): TestSnap;
  names: string[];
}

/** Bump when a recipe below changes. */
const RECIPES_VERSION = 2;

const BASE_DIRS = [
  "bin",
  "dev",
  "etc",
  "home",
  "lib",
  "media",
  "mnt",
  "opt",
  "proc",
  "root",
  "run",
  "snap",
  "srv",
  "sys",
  "tmp",
  "usr",
  "var",
];

interface Recipe {
  yaml: string;
  files: Record<string, string>;
  devmode: boolean;
}

function app(name: string, extra: { daemon?: boolean } = {}): Recipe {
  const files: Record<string, string> = { "bin/hello": "#!/bin/sh\necho hello\n" };
  const apps = ["  hello:", "    command: bin/hello"];
  if (extra.daemon) {
    files["bin/daemon"] = "#!/bin/sh\nwhile true; do sleep 3600; done\n";
    apps.push("  daemon:", "    command: bin/daemon", "    daemon: simple");
  }
  return {
    yaml: [
      `name: ${name}`,
      'version: "1.0"',
      "base: peer-bbbase",
      `summary: ${name} for tests`,
      `description: ${name}, a local snap for the real-snapd tests`,
      "confinement: devmode",
      "apps:",
      ...apps,
      "",
    ].join("\n"),
    files,
    devmode: true,
  };
}

const RECIPES: Record<string, Recipe> = {
  "peer-svc": app("peer-svc", { daemon: true }),
  "peer-filler-a": app("peer-filler-a"),
  "peer-filler-b": app("peer-filler-b"),
  "peer-filler-c": app("peer-filler-c"),
};

/** The names of `count` filler snaps (`peer-fill-001`, …): small apps with a service, for lists of 100 snaps. */
export function fillerNames(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `peer-fill-${String(i + 1).padStart(3, "0")}`);
}

/** Builds (or finds in the cache) every test snap, and `fillers` filler snaps. */
export async function buildTestSnaps(fillers = 0): Promise<TestSnaps> {
  const version = (await run("dpkg-query", ["-W", "-f=${Version}", "snapd"])).stdout.trim() || "unknown";
  const cache = join(
    await tempRoot(),
    `iot-agent-test-snaps-${RECIPES_VERSION}-${version.replace(/[^\w.-]/g, "_")}`,
  );
  const out = join(cache, "out");
  await Deno.mkdir(out, { recursive: true });
  const built = new Map<string, TestSnap>();
  const pack = async (name: string, prepare: (dir: string) => Promise<void>, devmode: boolean) => {
    const existing = [...Deno.readDirSync(out)].find((e) => e.name.startsWith(`${name}_`));
    if (existing) return built.set(name, { name, file: join(out, existing.name), devmode });
    const dir = join(cache, "src", name);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await Deno.mkdir(join(dir, "meta"), { recursive: true });
    await prepare(dir);
    const packed = await run("snap", ["pack", dir, out]);
    if (!packed.ok) throw new Error(`snap pack ${name}: ${packed.stderr}`);
    const file = [...Deno.readDirSync(out)].find((e) => e.name.startsWith(`${name}_`))!;
    built.set(name, { name, file: join(out, file.name), devmode });
  };
  await pack("snapd", async (dir) => {
    const listed = (await run("dpkg", ["-L", "snapd"])).stdout.split("\n").filter((p) => p.startsWith("/"));
    for (const path of listed) {
      const info = await Deno.lstat(path).catch(() => undefined);
      if (!info || info.isDirectory) continue;
      if (info.isSymlink && (await Deno.stat(path).catch(() => undefined))?.isDirectory) continue;
      await Deno.mkdir(join(dir, path, ".."), { recursive: true }).catch((error) => {
        if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
      });
      if (info.isSymlink) await Deno.symlink(await Deno.readLink(path), join(dir, path));
      else await Deno.copyFile(path, join(dir, path));
    }
    await Deno.writeTextFile(
      join(dir, "meta/snap.yaml"),
      `name: snapd\nversion: "${version}"\ntype: snapd\nsummary: snapd\ndescription: Debian's snapd as a snap\n`,
    );
  }, false);
  await pack("peer-bbbase", async (dir) => {
    for (const sub of BASE_DIRS) await Deno.mkdir(join(dir, sub), { recursive: true });
    const busybox = (await run("sh", ["-c", "command -v busybox"])).stdout.trim();
    await Deno.copyFile(busybox, join(dir, "bin/busybox"));
    await Deno.chmod(join(dir, "bin/busybox"), 0o755);
    await Deno.symlink("busybox", join(dir, "bin/sh"));
    await Deno.writeTextFile(
      join(dir, "meta/snap.yaml"),
      'name: peer-bbbase\nversion: "1.0"\ntype: base\nsummary: a busybox base\ndescription: a busybox base for tests\n',
    );
  }, false);
  const recipes = {
    ...RECIPES,
    ...Object.fromEntries(fillerNames(fillers).map((n) => [n, app(n, { daemon: true })])),
  };
  for (const [name, recipe] of Object.entries(recipes)) {
    await pack(name, async (dir) => {
      await Deno.writeTextFile(join(dir, "meta/snap.yaml"), recipe.yaml);
      for (const [path, content] of Object.entries(recipe.files)) {
        await Deno.mkdir(join(dir, path, ".."), { recursive: true });
        await Deno.writeTextFile(join(dir, path), content, { mode: 0o755 });
      }
    }, recipe.devmode);
  }
  return {
    names: [...built.keys()],
    get(name) {
      const snap = built.get(name);
      if (!snap) throw new Error(`no test snap ${name}`);
      return snap;
    },
  };
}

async function tempRoot(): Promise<string> {
  const probe = await Deno.makeTempDir();
  await Deno.remove(probe);
  return join(probe, "..");
}
