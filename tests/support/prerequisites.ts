/**
 * What the tests need from the machine beyond Deno: Debian packages, each found by a file it installs. As root the
 * missing ones are installed (`apt-get update` first); otherwise one line names exactly what is missing and the
 * command that installs it.
 */

/** A package and a file that proves it is installed. */
export interface Prerequisite {
  package: string;
  /** A command name (looked up on PATH, with /usr/sbin and /sbin) or an absolute path. */
  provides: string;
  why: string;
}

/** Everything the test suite uses. */
export const PREREQUISITES: Prerequisite[] = [
  { package: "mosquitto", provides: "mosquitto", why: "the MQTT broker of every end-to-end test" },
  { package: "nats-server", provides: "nats-server", why: "the local API's server" },
  { package: "openssl", provides: "openssl", why: "certificate revocation lists for the TLS tests" },
  { package: "shellcheck", provides: "shellcheck", why: "the snap's scripts are checked" },
  { package: "python3", provides: "python3", why: "the fake snapctl of the hook tests" },
  { package: "snapd", provides: "/usr/lib/snapd/snapd", why: "the real-snapd tier" },
  { package: "squashfs-tools", provides: "mksquashfs", why: "packing the real-snapd tier's test snaps" },
  { package: "busybox-static", provides: "busybox", why: "the tiny base of the test snaps" },
  { package: "faketime", provides: "faketime", why: "the clock at 1970 for a real agent (libfaketime)" },
  { package: "tinyproxy", provides: "tinyproxy", why: "the HTTP proxy the agent dials through" },
  {
    package: "python3-fusepy",
    provides: "/usr/lib/python3/dist-packages/fusepy.py",
    why: "the power-cut filesystem (FUSE, over libfuse2) of the durability tests",
  },
];

const SEARCH = ["/usr/sbin", "/sbin"];

/** True when `provides` exists (a path) or is found on PATH. */
export async function present(provides: string): Promise<boolean> {
  const candidates = provides.startsWith("/")
    ? [provides]
    : [...(Deno.env.get("PATH") ?? "").split(":"), ...SEARCH].filter(Boolean).map((dir) =>
      `${dir}/${provides}`
    );
  for (const path of candidates) {
    if (await Deno.stat(path).then((info) => info.isFile, () => false)) return true;
  }
  return false;
}

/** The prerequisites not installed. */
export async function missing(list: Prerequisite[] = PREREQUISITES): Promise<Prerequisite[]> {
  const out: Prerequisite[] = [];
  for (const item of list) if (!(await present(item.provides))) out.push(item);
  return out;
}

function isRoot(): boolean {
  try {
    return Deno.uid() === 0;
  } catch {
    return false;
  }
}

async function apt(args: string[]): Promise<boolean> {
  const status = await new Deno.Command("apt-get", {
    args,
    env: { DEBIAN_FRONTEND: "noninteractive" },
    stdout: "inherit",
    stderr: "inherit",
  }).spawn().status;
  return status.success;
}

/** How packages get installed: apt-get as root. Tests hand in their own. */
export interface Installer {
  canInstall: boolean;
  install(packages: string[]): Promise<boolean>;
}

/** apt-get, when this process is root. */
export const APT: Installer = {
  canInstall: isRoot(),
  async install(packages) {
    return await apt(["update"]) && await apt(["install", "-y", "--no-install-recommends", ...packages]);
  },
};

/**
 * Makes sure every prerequisite is installed: installs what is missing when it can (root). Returns the one-line
 * complaint when something is still missing, or undefined.
 */
export async function ensurePrerequisites(
  list: Prerequisite[] = PREREQUISITES,
  installer: Installer = APT,
): Promise<string | undefined> {
  let absent = await missing(list);
  if (absent.length === 0) return undefined;
  if (installer.canInstall) {
    console.error(
      `tests: installing ${absent.map((item) => item.package).join(" ")} (Debian packages the tests need)`,
    );
    if (await installer.install(absent.map((item) => item.package))) {
      absent = await missing(list);
      if (absent.length === 0) return undefined;
    }
  }
  return `tests: missing ${absent.map((item) => `${item.package} (${item.why})`).join(", ")}: ` +
    `run as root to install them, or: sudo apt-get install -y ${
      absent.map((item) => item.package).join(" ")
    }`;
}
