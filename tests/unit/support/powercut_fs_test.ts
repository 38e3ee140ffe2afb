/**
 * The power-cut filesystem keeps exactly what a disk with a volatile cache keeps: each test shows one rule holding
 * and would fail against a filesystem that kept more (or less).
 */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { DatabaseSync } from "node:sqlite";
import { Child } from "../../support/child.ts";
import { isMounted, mountPowercutFs, type PowercutFs, syncDir } from "../../support/powercut_fs.ts";
import { until, within } from "../../support/wait.ts";

const PYTHON = "/usr/bin/python3";
const WRITER = fileURLToPath(new URL("../../support/powercut_sqlite_writer.ts", import.meta.url));
const HELPER = new URL("../../support/powercut_fs.ts", import.meta.url).href;
const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** Every mount point this file made, to check none is left behind. */
const made: string[] = [];

async function mount(): Promise<PowercutFs> {
  const fs = await mountPowercutFs();
  made.push(fs.path);
  return fs;
}

/** Writes all of `data` with one open; fsyncs the file when `sync`. */
async function put(path: string, data: string | Uint8Array, sync: boolean): Promise<void> {
  const file = await Deno.open(path, { write: true, create: true });
  try {
    await writeAll(file, typeof data === "string" ? encoder.encode(data) : data);
    if (sync) await file.sync();
  } finally {
    file.close();
  }
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.length;) done += await file.write(bytes.subarray(done));
}

/** The file's text, or undefined when there is none. */
async function text(path: string): Promise<string | undefined> {
  return await Deno.readTextFile(path).catch((error) => {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  });
}

/** The first index where `a` and `b` differ (the shorter one's length if one is a prefix), or -1: assert's diff of
 * two MB arrays would take minutes. */
function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/** A power cut with nothing running: freeze, then drop every volatile change. */
async function crash(fs: PowercutFs): Promise<void> {
  await fs.cut();
  await fs.restore();
}

const isEio = (error: unknown) => (error as { code?: string }).code === "EIO";

Deno.test("a file written without fsync: gone after a cut, empty when only its name was made durable", async () => {
  await using fs = await mount();
  const named = join(fs.path, "named"), unnamed = join(fs.path, "unnamed");
  await put(named, "data never fsynced", false);
  await syncDir(fs.path);
  await put(unnamed, "neither data nor name", false);
  assert.equal(await text(named), "data never fsynced", "visible before the cut");
  assert.equal(await text(unnamed), "neither data nor name");
  await crash(fs);
  assert.equal(await text(named), "", "the durable name of a file whose data was never fsynced: empty");
  assert.equal(await text(unnamed), undefined, "no durable name: gone");
});

Deno.test("a fsynced file is gone when its directory was not fsynced, there with its data when it was", async () => {
  await using fs = await mount();
  const sub = join(fs.path, "sub");
  await Deno.mkdir(sub);
  await syncDir(fs.path);
  await put(join(sub, "lost"), "fsynced, but sub never was", true);
  await syncDir(fs.path); // the root, not sub: not the file's directory
  await crash(fs);
  assert.equal((await Deno.stat(sub)).isDirectory, true, "sub's own name was made durable");
  assert.equal(await text(join(sub, "lost")), undefined);
  await put(join(sub, "kept"), "fsynced, and sub too", true);
  await syncDir(sub);
  await crash(fs);
  assert.equal(await text(join(sub, "kept")), "fsynced, and sub too");
});

Deno.test("rename over an existing file without fsyncing the directory: the old target and tmp come back", async () => {
  await using fs = await mount();
  const target = join(fs.path, "target"), tmp = join(fs.path, "target.tmp");
  await put(target, "old", true);
  await put(tmp, "new", true);
  await syncDir(fs.path);
  await Deno.rename(tmp, target);
  assert.equal(await text(target), "new");
  assert.equal(await text(tmp), undefined);
  await crash(fs);
  assert.equal(await text(target), "old", "the rename was volatile");
  assert.equal(await text(tmp), "new", "tmp as it was durably");
  await Deno.rename(tmp, target);
  await syncDir(fs.path);
  await crash(fs);
  assert.equal(await text(target), "new", "with the directory fsynced the rename holds");
  assert.equal(await text(tmp), undefined);
});

Deno.test("attributes follow the data: a chmod survives only an fsync; O_APPEND and MB files", async () => {
  await using fs = await mount();
  const file = join(fs.path, "big");
  const big = new Uint8Array(5 * 1024 * 1024).map((_, i) => (i * 7 + (i >> 12)) & 0xff);
  await put(file, big, true);
  await syncDir(fs.path);
  await Deno.chmod(file, 0o600);
  const appender = await Deno.open(file, { append: true });
  await writeAll(appender, encoder.encode("tail"));
  appender.close();
  assert.equal((await Deno.stat(file)).size, big.length + 4);
  await crash(fs);
  assert.equal((await Deno.stat(file)).mode! & 0o777, 0o644, "chmod without fsync: lost");
  assert.equal(
    firstDifference(await Deno.readFile(file), big),
    -1,
    "the append without fsync: lost, the rest intact",
  );
  await Deno.chmod(file, 0o600);
  const again = await Deno.open(file, { append: true });
  await writeAll(again, encoder.encode("tail"));
  await again.sync();
  again.close();
  await crash(fs);
  assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600, "chmod then fsync: kept");
  const back = await Deno.readFile(file);
  assert.equal(back.length, big.length + 4);
  assert.equal(firstDifference(back.subarray(0, big.length), big), -1);
  assert.equal(decoder.decode(back.subarray(big.length)), "tail");
});

Deno.test("flock and fcntl locks conflict across processes (the kernel keeps them: the daemon has no lock op)", async () => {
  await using fs = await mount();
  const file = join(fs.path, "locked");
  await put(file, "x", false);
  const holder = Child.spawn(PYTHON, [
    "-c",
    "import fcntl, sys, time\nf = open(sys.argv[1], 'r+')\nfcntl.lockf(f, fcntl.LOCK_EX)\n" +
    "fcntl.flock(f, fcntl.LOCK_EX)\nprint('locked', flush=True)\ntime.sleep(60)",
    file,
  ]);
  const probe = async () => {
    const out = await new Deno.Command(PYTHON, {
      args: [
        "-c",
        "import fcntl, sys\nf = open(sys.argv[1], 'r+')\nfor name, lock in (('fcntl', lambda: fcntl.lockf(f, " +
        "fcntl.LOCK_EX | fcntl.LOCK_NB)), ('flock', lambda: fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB))):\n" +
        "    try:\n        lock()\n        print(name, 'free')\n    except BlockingIOError:\n" +
        "        print(name, 'busy')",
        file,
      ],
    }).output();
    return decoder.decode(out.stdout).trim().split("\n");
  };
  try {
    await holder.waitForLine(/^locked$/);
    assert.deepEqual(await probe(), ["fcntl busy", "flock busy"]);
  } finally {
    await holder.stop("SIGKILL");
  }
  assert.deepEqual(await probe(), ["fcntl free", "flock free"]);
});

/** A database in WAL mode with 10 rows, and its directory, made durable before the test's commits. */
async function durableDatabase(fs: PowercutFs): Promise<string> {
  const path = join(fs.path, "test.db");
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL");
  db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
  for (let i = 0; i < 10; i++) db.exec(`INSERT INTO t (v) VALUES ('setup ${i}')`);
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  db.close(); // checkpoints and deletes the WAL (and the -shm)
  await syncDir(fs.path);
  return path;
}

function rowsAndIntegrity(path: string): { rows: number; integrity: string } {
  const db = new DatabaseSync(path);
  try {
    const rows = (db.prepare("SELECT count(*) AS n FROM t").get() as { n: number }).n;
    const integrity =
      (db.prepare("PRAGMA integrity_check").get() as { integrity_check: string }).integrity_check;
    return { rows, integrity };
  } finally {
    db.close();
  }
}

/** Commits from a child, a cut in the middle, the child SIGKILLed, restore: what survives. */
async function sqliteCut(synchronous: "OFF" | "FULL", locking: "NORMAL" | "EXCLUSIVE") {
  await using fs = await mount();
  const path = await durableDatabase(fs);
  await fs.resetCounts(); // the setup made a -shm in any mode
  const writer = Child.spawn(Deno.execPath(), ["run", "--allow-all", WRITER, path, synchronous, locking]);
  try {
    await writer.waitForLine(/^committed 50$/, { timeoutMs: 30_000 });
    await fs.cut();
  } finally {
    await within(writer.stop("SIGKILL"), "the sqlite writer to die of SIGKILL", 5_000);
  }
  const shm = Object.keys((await fs.counts()).paths).includes("/test.db-shm");
  await fs.restore();
  const committed = Math.max(...writer.matching(/^committed \d+$/).map((line) => Number(line.split(" ")[1])));
  return { committed, shm, ...rowsAndIntegrity(path) };
}

for (const locking of ["EXCLUSIVE", "NORMAL"] as const) {
  Deno.test(`sqlite WAL (locking_mode=${locking}): synchronous=OFF loses commits, FULL keeps every one`, async () => {
    const off = await sqliteCut("OFF", locking);
    assert.equal(off.shm, locking === "NORMAL", "a -shm file (mmapped by sqlite) exactly in NORMAL mode");
    assert.equal(off.integrity, "ok");
    assert.ok(off.rows >= 10, `the durable setup rows survive (${off.rows})`);
    assert.ok(off.rows < 10 + off.committed, `OFF: ${off.rows - 10} of ${off.committed} commits survive`);
    const full = await sqliteCut("FULL", locking);
    assert.equal(full.integrity, "ok");
    assert.ok(full.rows >= 10 + full.committed, `FULL: ${full.rows - 10} rows for ${full.committed} commits`);
  });
}

Deno.test("a sqlite commit with fsync (WAL, synchronous=FULL) costs well under 10 ms", async () => {
  await using fs = await mount();
  const path = await durableDatabase(fs);
  const db = new DatabaseSync(path);
  try {
    db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL");
    const insert = db.prepare("INSERT INTO t (v) VALUES (?)");
    const costs: number[] = [];
    for (let i = 0; i < 200; i++) {
      const start = performance.now();
      insert.run(`row ${i} ${"x".repeat(200)}`);
      costs.push(performance.now() - start);
    }
    costs.sort((a, b) => a - b);
    const median = costs[costs.length >> 1];
    console.log(
      `sqlite commit through powercut_fs: median ${median.toFixed(2)} ms, p90 ${costs[180].toFixed(2)} ms`,
    );
    assert.ok(median < 10, `median commit ${median} ms`);
    assert.ok((await fs.counts()).paths["/test.db-wal"].fsyncs >= 200, "each commit fsynced the WAL");
  } finally {
    db.close();
  }
});

/** Each step is one durable-relevant operation; `durable` is the tree a cut right after it leaves. */
interface Step {
  run: (dir: string, files: Map<string, Deno.FsFile>) => Promise<void>;
  durable: Record<string, string>;
}

const open = (name: string) => async (dir: string, files: Map<string, Deno.FsFile>) => {
  files.set(name, await Deno.open(join(dir, name), { write: true, create: true }));
};
const write = (name: string, data: string) => async (_: string, files: Map<string, Deno.FsFile>) => {
  await writeAll(files.get(name)!, encoder.encode(data));
};
const fsync = (name: string) => async (_: string, files: Map<string, Deno.FsFile>) => {
  await files.get(name)!.sync();
};
const close = (name: string, files: Map<string, Deno.FsFile>) => {
  files.get(name)!.close();
  files.delete(name);
};

const SCENARIO: Step[] = [
  { run: open("a"), durable: {} },
  { run: write("a", "one"), durable: {} },
  { run: fsync("a"), durable: {} },
  { run: (dir) => syncDir(dir), durable: { a: "one" } },
  { run: write("a", " two"), durable: { a: "one" } },
  { run: (dir) => Deno.mkdir(join(dir, "sub")), durable: { a: "one" } },
  { run: open("sub/b"), durable: { a: "one" } },
  { run: write("sub/b", "bee"), durable: { a: "one" } },
  { run: fsync("sub/b"), durable: { a: "one" } },
  { run: (dir) => syncDir(dir), durable: { a: "one", sub: "<dir>" } },
  { run: (dir) => syncDir(join(dir, "sub")), durable: { a: "one", sub: "<dir>", "sub/b": "bee" } },
  { run: fsync("a"), durable: { a: "one two", sub: "<dir>", "sub/b": "bee" } },
  { run: open("tmp"), durable: { a: "one two", sub: "<dir>", "sub/b": "bee" } },
  { run: write("tmp", "three"), durable: { a: "one two", sub: "<dir>", "sub/b": "bee" } },
  { run: fsync("tmp"), durable: { a: "one two", sub: "<dir>", "sub/b": "bee" } },
  {
    run: (dir, files) => (close("tmp", files), Deno.rename(join(dir, "tmp"), join(dir, "a"))),
    durable: { a: "one two", sub: "<dir>", "sub/b": "bee" },
  },
  { run: (dir) => syncDir(dir), durable: { a: "three", sub: "<dir>", "sub/b": "bee" } },
  { run: (dir) => Deno.remove(join(dir, "sub/b")), durable: { a: "three", sub: "<dir>", "sub/b": "bee" } },
  { run: (dir) => syncDir(join(dir, "sub")), durable: { a: "three", sub: "<dir>" } },
];

async function runScenario(dir: string): Promise<void> {
  const files = new Map<string, Deno.FsFile>();
  try {
    for (const step of SCENARIO) await step.run(dir, files);
  } finally {
    for (const file of files.values()) file.close();
  }
}

/** The tree under `dir`: file name → text, directories as `<dir>`. */
async function tree(dir: string, prefix = ""): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for await (const entry of Deno.readDir(join(dir, prefix))) {
    const name = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory) {
      out[name] = "<dir>";
      Object.assign(out, await tree(dir, name));
    } else out[name] = await Deno.readTextFile(join(dir, name));
  }
  return out;
}

/** A fresh directory, durable and empty, for one run of the scenario. */
async function freshDir(fs: PowercutFs, name: string): Promise<string> {
  const dir = join(fs.path, name);
  await Deno.mkdir(dir);
  await syncDir(fs.path);
  return dir;
}

Deno.test("cut-at k: the count is reproducible, a cut at each k leaves exactly the durable prefix", async () => {
  await using fs = await mount();
  for (const run of ["count-1", "count-2"]) {
    const dir = await freshDir(fs, run);
    await fs.resetCounts();
    await runScenario(dir);
    assert.equal((await fs.counts()).totals.ops, SCENARIO.length, `${run}: one durable-relevant op per step`);
  }
  for (let k = 1; k <= SCENARIO.length; k++) {
    const dir = await freshDir(fs, `cut-${k}`);
    await fs.cutAt(k);
    const run = runScenario(dir).then(() => undefined, (error) => error);
    if (k < SCENARIO.length) await fs.waitBlocked(1);
    else assert.equal(await within(run, "the scenario's last step", 10_000), undefined);
    assert.equal(await fs.frozen(), true, `frozen after op ${k}`);
    const failed = await fs.restore();
    if (k < SCENARIO.length) {
      assert.equal(failed, 1, `the op after ${k} was blocked`);
      const error = await within(run, `the scenario to fail after the cut at ${k}`, 10_000);
      assert.ok(isEio(error), `the blocked op fails with EIO, got ${error}`);
    }
    assert.deepEqual(await tree(dir), SCENARIO[k - 1].durable, `after a cut at op ${k}`);
  }
});

Deno.test("a blocked op fails with EIO after restore and is not applied", async () => {
  await using fs = await mount();
  const file = join(fs.path, "f");
  await put(file, "durable", true);
  await syncDir(fs.path);
  const handle = await Deno.open(file, { write: true });
  await fs.cut();
  const blocked = handle.write(encoder.encode("volatile")).then(() => undefined, (error) => error);
  const mkdir = Deno.mkdir(join(fs.path, "d")).then(() => undefined, (error) => error);
  await fs.waitBlocked(2);
  assert.equal(await fs.restore(), 2);
  assert.ok(isEio(await blocked), "the write");
  assert.ok(isEio(await mkdir), "the mkdir");
  handle.close();
  assert.equal(await text(file), "durable");
  assert.equal(await Deno.stat(join(fs.path, "d")).then(() => true, () => false), false, "no directory d");
});

Deno.test("a process blocked on the frozen mount dies promptly of SIGKILL, before any restore", async () => {
  await using fs = await mount();
  const file = join(fs.path, "loop");
  const child = Child.spawn(Deno.execPath(), [
    "eval",
    `const f = await Deno.open(${JSON.stringify(file)}, { write: true, create: true });` +
    "for (;;) await f.write(new Uint8Array(100));",
  ]);
  try {
    await until(async () => ((await fs.counts()).paths["/loop"]?.writes ?? 0) > 10, "the child's writes");
    await fs.cut();
    await fs.waitBlocked(1);
    const start = performance.now();
    const status = await within(child.stop("SIGKILL"), "the blocked child to die of SIGKILL", 2_000);
    const ms = performance.now() - start;
    assert.equal(status.signal, "SIGKILL");
    assert.ok(ms < 1_000, `died in ${ms.toFixed(0)} ms`);
    await until(
      async () => (await fs.status()).blocked === 0,
      "the daemon to answer the interrupted op",
      2_000,
    );
    assert.equal(await fs.frozen(), true, "still frozen: nothing was restored");
  } finally {
    // A child stuck in the kernel dies only once its request is answered: restore before waiting for it.
    const dying = child.stop("SIGKILL");
    await fs.restore();
    await within(dying, "the child to die once the mount is restored", 5_000);
  }
  assert.equal(await text(file), undefined, "its name was never made durable");
});

Deno.test("counts: operations, bytes written and fsyncs per file, exactly", async () => {
  await using fs = await mount();
  await fs.resetCounts();
  const f = await Deno.open(join(fs.path, "f"), { write: true, create: true });
  for (let i = 0; i < 3; i++) await writeAll(f, new Uint8Array(1000));
  await f.sync();
  await writeAll(f, new Uint8Array(24));
  await f.sync();
  f.close();
  await put(join(fs.path, "g"), "hello", false);
  await syncDir(fs.path);
  const { paths, totals } = await fs.counts();
  const pick = ({ ops, writes, bytesWritten, fsyncs }: typeof totals) => ({
    ops,
    writes,
    bytesWritten,
    fsyncs,
  });
  assert.deepEqual(
    pick(paths["/f"]),
    { ops: 7, writes: 4, bytesWritten: 3024, fsyncs: 2 },
    "create 4 writes 2 fsyncs",
  );
  assert.deepEqual(pick(paths["/g"]), { ops: 2, writes: 1, bytesWritten: 5, fsyncs: 0 });
  assert.deepEqual(pick(paths["/"]), { ops: 1, writes: 0, bytesWritten: 0, fsyncs: 1 });
  assert.deepEqual(pick(totals), { ops: 10, writes: 5, bytesWritten: 3029, fsyncs: 3 });
  await fs.resetCounts();
  assert.deepEqual(pick((await fs.counts()).totals), { ops: 0, writes: 0, bytesWritten: 0, fsyncs: 0 });
});

const gone = (path: string) => Deno.stat(path).then(() => false, () => true);

Deno.test("unmount is clean when a test fails midway, even with ops blocked; twice is fine", async () => {
  let fs: PowercutFs | undefined;
  let blocked: Promise<unknown> | undefined;
  await assert.rejects(async () => {
    await using mounted = await mount();
    fs = mounted;
    await mounted.cut();
    blocked = Deno.readTextFile(join(mounted.path, "x")).catch((error) => error);
    await mounted.waitBlocked(1);
    throw new Error("the test fails midway");
  }, /fails midway/);
  assert.ok(fs);
  assert.equal(await isMounted(fs.path), false);
  assert.ok(await gone(dirname(fs.path)), "the temp dir is removed");
  assert.ok(await gone(`/proc/${fs.pid}`), "the daemon is gone");
  assert.ok(await blocked instanceof Error, "the blocked read failed");
  await fs.unmount();
});

for (const ending of ["an uncaught error", "Deno.exit"]) {
  Deno.test(`a process that ends by ${ending} without unmounting leaves no mount behind`, async () => {
    const code = `import { mountPowercutFs } from ${JSON.stringify(HELPER)};\n` +
      "const fs = await mountPowercutFs();\nawait fs.cut();\n" +
      "console.log(JSON.stringify({ path: fs.path, pid: fs.pid }));\n" +
      (ending === "Deno.exit" ? "Deno.exit(1);" : "throw new Error('abandoned');");
    const out = await new Deno.Command(Deno.execPath(), { args: ["eval", code], stderr: "null" }).output();
    const { path, pid } = JSON.parse(decoder.decode(out.stdout)) as { path: string; pid: number };
    made.push(path);
    await until(
      async () => !(await isMounted(path)) && await gone(`/proc/${pid}`) && await gone(dirname(path)),
      `the abandoned mount ${path} to be unmounted, its daemon ${pid} gone and its temp dir removed`,
      10_000,
    );
  });
}

Deno.test("no mount of these tests is left in /proc/mounts", async () => {
  for (const path of made) assert.equal(await isMounted(path), false, path);
});
