/**
 * A power-cut filesystem for tests: a FUSE mount (tests/support/powercut_fs.py, Debian's python3-fusepy) that keeps
 * what a disk with a volatile write cache would keep. A file's data and attributes survive a cut only once the file
 * was fsynced, a name only once its directory was fsynced. {@link PowercutFs.cut} freezes every operation (the test
 * then SIGKILLs what uses the mount), {@link PowercutFs.restore} drops every volatile change at once and serves
 * again, failing the operations it had blocked with EIO without applying them.
 *
 * While frozen, only asynchronous file operations may touch the mount from the test's own process: a synchronous
 * one blocks the one thread that would send the restore.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { until, within } from "./wait.ts";

/** Debian's interpreter: python3-fusepy is installed for it (a pyenv `python3` on PATH would lack it). */
const PYTHON = "/usr/bin/python3";
const DAEMON = fileURLToPath(new URL("./powercut_fs.py", import.meta.url));

/** Options of {@link mountPowercutFs}. */
export interface PowercutFsOptions {
  /** How long to wait for the mount to be live, in milliseconds. @default 10_000 */
  mountTimeoutMs?: number;
  /** How long to wait for one answer of the control socket, in milliseconds. @default 5_000 */
  controlTimeoutMs?: number;
  /** The daemon's output (and libfuse's) on this process's stderr instead of in a log file. @default env
   * TEST_VERBOSE */
  echo?: boolean;
}

/** Counters of one path (the path an operation named when it ran) or of all of them. */
export interface PowercutCounters {
  /** Durable-relevant operations (write, truncate, fsync, fsyncdir, create, mknod, mkdir, rename, unlink, rmdir,
   * symlink, link): what {@link PowercutFs.cutAt} counts. Writes the kernel sends on its own (writeback of shared
   * mmap pages) are counted in `writes` and `bytesWritten` but not here: their timing is not reproducible. */
  ops: number;
  /** Write requests (the kernel splits a write larger than 128 KiB). */
  writes: number;
  /** Bytes written, in bytes. */
  bytesWritten: number;
  /** fsync and fsyncdir requests (fdatasync included). */
  fsyncs: number;
  /** Read requests. */
  reads: number;
  /** Bytes read, in bytes. */
  bytesRead: number;
  /** Every other request: lookups, getattr, open, readdir, chmod... */
  otherOps: number;
}

/** What {@link PowercutFs.counts} reports: counters per path inside the mount (`/` is its root) and their sums. */
export interface PowercutCounts {
  paths: Record<string, PowercutCounters>;
  totals: PowercutCounters;
}

/** The daemon's state. */
export interface PowercutStatus {
  /** The kernel finished FUSE's INIT handshake. */
  mounted: boolean;
  frozen: boolean;
  /** Operations waiting on the freeze. */
  blocked: number;
  /** Restores so far. */
  generation: number;
  /** Durable-relevant operations left before an automatic cut, or null when none is armed. */
  cutAt: number | null;
  /** Durable-relevant operations since the mount or the last reset. */
  durableOps: number;
  /** The last durable-relevant operation and the path it named (where an automatic cut fell). */
  lastOp: { op: string; path: string } | null;
}

/** A mounted power-cut filesystem. */
export interface PowercutFs {
  /** The mount point (an absolute path). */
  readonly path: string;
  /** The daemon's process id. */
  readonly pid: number;
  /** Freezes: every further operation on the mount blocks until {@link restore}. */
  cut(): Promise<void>;
  /** The tree becomes the durable tree; blocked operations fail with EIO, unapplied. Resolves with their number. */
  restore(): Promise<number>;
  /** Freezes right after the `n`-th durable-relevant operation from now completes (`n` ≥ 1; 0 disarms). */
  cutAt(n: number): Promise<void>;
  /** Whether the mount is frozen now. */
  frozen(): Promise<boolean>;
  /** Resolves once frozen; rejects after `timeoutMs` milliseconds (default 10 000). */
  waitFrozen(timeoutMs?: number): Promise<void>;
  /** Resolves once at least `count` operations are blocked; rejects after `timeoutMs` milliseconds. */
  waitBlocked(count?: number, timeoutMs?: number): Promise<void>;
  /** The daemon's state. */
  status(): Promise<PowercutStatus>;
  /** Operation counters since the mount or the last {@link resetCounts}. */
  counts(): Promise<PowercutCounts>;
  /** Zeroes the counters. */
  resetCounts(): Promise<void>;
  /** Releases blocked operations, unmounts, stops the daemon and removes the temp dir; safe to call twice. */
  unmount(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Whether `path` is a mount point now, by /proc/mounts. */
export async function isMounted(path: string): Promise<boolean> {
  const mounts = await Deno.readTextFile("/proc/mounts");
  // /proc/mounts escapes spaces and the like as octal; our temp paths have none.
  return mounts.split("\n").some((line) => line.split(" ")[1] === path);
}

/** fsyncs the directory `path` (a FUSE fsyncdir): makes its entries durable. */
export async function syncDir(path: string): Promise<void> {
  const dir = await Deno.open(path, { read: true });
  try {
    await dir.sync();
  } finally {
    dir.close();
  }
}

/** Mounts a fresh, empty power-cut filesystem on a temp dir; resolves once it serves. */
export async function mountPowercutFs(options: PowercutFsOptions = {}): Promise<PowercutFs> {
  const dir = await Deno.makeTempDir({ prefix: "powercut-" });
  const mount = new Mount(dir, options);
  try {
    await mount.start(options.mountTimeoutMs ?? 10_000);
  } catch (error) {
    await mount.unmount().catch(() => {});
    throw error;
  }
  return mount;
}

class Mount implements PowercutFs {
  readonly path: string;
  readonly #dir: string;
  readonly #socket: string;
  readonly #controlTimeoutMs: number;
  readonly #log: string;
  readonly #echo: boolean;
  #daemon: Deno.ChildProcess | undefined;
  #exited = false;
  #unmounting: Promise<void> | undefined;
  // A test runner that ends (even after a failed test) still unmounts; a killed one leaves it to the daemon, which
  // unmounts when its parent dies.
  readonly #onUnload = () => this.#unmountSync();

  constructor(dir: string, options: PowercutFsOptions) {
    this.#dir = dir;
    this.path = join(dir, "mnt");
    this.#socket = join(dir, "control.sock");
    this.#log = join(dir, "daemon.log");
    this.#controlTimeoutMs = options.controlTimeoutMs ?? 5_000;
    this.#echo = options.echo ?? Boolean(Deno.env.get("TEST_VERBOSE"));
  }

  async start(timeoutMs: number): Promise<void> {
    await Deno.mkdir(this.path);
    globalThis.addEventListener("unload", this.#onUnload);
    const args = [DAEMON, this.path, "--control", this.#socket, "--temp-dir", this.#dir];
    // Output goes to a file, not a pipe: a pipe being read keeps this process's event loop alive (so its unload
    // never comes), and Deno kills the children it still tracks when it dies of an uncaught error — unref'd, the
    // daemon outlives that and unmounts on its own when it sees its parent gone.
    const daemon = new Deno.Command(PYTHON, {
      args: this.#echo ? args : [...args, "--log", this.#log],
      stdin: "null",
      stdout: this.#echo ? "inherit" : "null",
      stderr: this.#echo ? "inherit" : "null",
    }).spawn();
    daemon.unref();
    this.#daemon = daemon;
    daemon.status.then(() => (this.#exited = true));
    try {
      await until(
        async () => {
          if (this.#exited) throw new Error(`the powercut daemon exited before mounting ${this.path}`);
          if (!(await isMounted(this.path))) return false;
          return await this.status().then((status) => status.mounted, () => false);
        },
        `the powercut filesystem to be mounted at ${this.path}`,
        timeoutMs,
      );
    } catch (error) {
      throw new Error(`${(error as Error).message}; daemon log:\n${await this.#logTail()}`);
    }
  }

  async #logTail(): Promise<string> {
    return await Deno.readTextFile(this.#log).then(
      (text) => text.split("\n").slice(-40).join("\n"),
      () => "",
    );
  }

  get pid(): number {
    return this.#daemon?.pid ?? 0;
  }

  async cut(): Promise<void> {
    await this.#control("cut");
  }

  async restore(): Promise<number> {
    return (await this.#control("restore")).failed as number;
  }

  async cutAt(n: number): Promise<void> {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`cutAt wants an operation count ≥ 0, not ${n}`);
    await this.#control(`cut-at ${n}`);
  }

  async frozen(): Promise<boolean> {
    return (await this.status()).frozen;
  }

  async waitFrozen(timeoutMs = 10_000): Promise<void> {
    await until(() => this.frozen(), `the powercut filesystem at ${this.path} to freeze`, timeoutMs);
  }

  async waitBlocked(count = 1, timeoutMs = 10_000): Promise<void> {
    await until(
      async () => (await this.status()).blocked >= count,
      `${count} operation(s) to block on the frozen powercut filesystem at ${this.path}`,
      timeoutMs,
    );
  }

  async status(): Promise<PowercutStatus> {
    const answer = await this.#control("status");
    return {
      mounted: answer.mounted as boolean,
      frozen: answer.frozen as boolean,
      blocked: answer.blocked as number,
      generation: answer.generation as number,
      cutAt: answer.cutAt as number | null,
      durableOps: answer.durableOps as number,
      lastOp: (answer.lastOp ?? null) as PowercutStatus["lastOp"],
    };
  }

  async counts(): Promise<PowercutCounts> {
    const answer = await this.#control("count");
    return {
      paths: answer.paths as Record<string, PowercutCounters>,
      totals: answer.totals as PowercutCounters,
    };
  }

  async resetCounts(): Promise<void> {
    await this.#control("reset");
  }

  unmount(): Promise<void> {
    this.#unmounting ??= this.#unmount();
    return this.#unmounting;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.unmount();
  }

  async #unmount(): Promise<void> {
    globalThis.removeEventListener("unload", this.#onUnload);
    const daemon = this.#daemon;
    if (daemon) {
      // The daemon fails what it blocked (EIO) and detaches the mount itself; its FUSE loop then ends.
      await this.#control("quit").catch(() => {});
      const exited = await within(daemon.status, "the powercut daemon to exit after quit", 5_000).then(
        () => true,
        () => false,
      );
      if (!exited) {
        try {
          daemon.kill("SIGKILL");
        } catch { /* gone meanwhile */ }
        await within(daemon.status, "the powercut daemon to die of SIGKILL", 5_000);
      }
    }
    if (await isMounted(this.path)) await run("fusermount", ["-u", "-z", this.path]);
    if (await isMounted(this.path)) await run("umount", ["-l", this.path]);
    if (await isMounted(this.path)) {
      throw new Error(`${this.path} is still mounted after fusermount and umount`);
    }
    // Never recursive: were the mount still there, a recursive removal would empty it.
    for (const file of [this.#socket, this.#log]) await Deno.remove(file).catch(() => {});
    await Deno.remove(this.path).catch(() => {});
    await Deno.remove(this.#dir);
  }

  /** The unload path: nothing can be awaited there. */
  #unmountSync(): void {
    if (this.#unmounting) return;
    this.#unmounting = Promise.resolve();
    // The daemon first: with it gone the kernel fails whatever was blocked, so the unmount below cannot hang on a
    // frozen mount.
    try {
      if (!this.#exited) this.#daemon?.kill("SIGKILL");
    } catch { /* gone */ }
    for (
      const [command, args] of [["fusermount", ["-u", "-z", this.path]], ["umount", [
        "-l",
        this.path,
      ]]] as const
    ) {
      try {
        if (
          new Deno.Command(command, { args: [...args], stdout: "null", stderr: "null" }).outputSync().success
        ) break;
      } catch { /* not installed: try the next */ }
    }
    for (const path of [this.#socket, this.#log, this.path, this.#dir]) {
      try {
        Deno.removeSync(path);
      } catch { /* gone, or not empty: leave it */ }
    }
  }

  /** Sends one command line, resolves with the daemon's JSON answer; rejects when it is not ok or takes too long. */
  async #control(command: string): Promise<Record<string, unknown>> {
    const exchange = async () => {
      const conn = await Deno.connect({ transport: "unix", path: this.#socket });
      try {
        await conn.write(new TextEncoder().encode(`${command}\n`));
        let text = "";
        const decoder = new TextDecoder();
        for await (const chunk of conn.readable) {
          text += decoder.decode(chunk, { stream: true });
          if (text.includes("\n")) break;
        }
        return JSON.parse(text) as Record<string, unknown>;
      } finally {
        try {
          conn.close();
        } catch { /* the readable's end closed it */ }
      }
    };
    const answer = await within(
      exchange(),
      `the powercut daemon's answer to "${command}" on ${this.#socket}`,
      this.#controlTimeoutMs,
    );
    if (answer.ok !== true) throw new Error(`powercut daemon: "${command}" failed: ${answer.error}`);
    return answer;
  }
}

async function run(command: string, args: string[]): Promise<boolean> {
  try {
    return (await new Deno.Command(command, { args, stdout: "null", stderr: "null" }).output()).success;
  } catch {
    return false;
  }
}
