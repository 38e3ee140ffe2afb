/**
 * The state-file helpers (lib/files.ts) and the databases across a power cut, on the power-cut filesystem: what
 * they promise is durable must come back after a cut, byte for byte — a file written into a folder that did not
 * exist, a removal, a new database's first commits.
 */
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { assertEquals } from "../support/assert.ts";
import { ensureDirectory, makeDirectory, removeIfExists, writeFileAtomic } from "../../lib/files.ts";
import { createLogger, MemorySink } from "../../lib/log.ts";
import { openAgentDb } from "../../lib/store/agent_db.ts";
import { mountPowercutFs, type PowercutFs } from "../support/powercut_fs.ts";
import { writeDurably } from "../support/powercut_world.ts";

async function withFs(fn: (fs: PowercutFs) => Promise<void>): Promise<void> {
  const fs = await mountPowercutFs();
  try {
    await fn(fs);
  } finally {
    await fs.unmount();
  }
}

/** A cut with nothing running: every change never synced is dropped. */
async function cut(fs: PowercutFs): Promise<void> {
  await fs.cut();
  await fs.restore();
}

Deno.test("a state file written into folders that did not exist survives a power cut, folders and all", async () => {
  await withFs(async (fs) => {
    const path = join(fs.path, "var/lib/iot-agent/params");
    await writeFileAtomic(path, '{"url":"https://id.example"}');
    await cut(fs);
    assertEquals(await Deno.readTextFile(path), '{"url":"https://id.example"}');
  });
});

Deno.test("makeDirectory: a created folder survives a power cut", async () => {
  await withFs(async (fs) => {
    await makeDirectory(join(fs.path, "a/b/c"));
    await cut(fs);
    assertEquals((await Deno.stat(join(fs.path, "a/b/c"))).isDirectory, true);
  });
});

Deno.test("a removed file stays removed after a power cut (unregister cannot come back enrolled)", async () => {
  await withFs(async (fs) => {
    const secret = join(fs.path, ".secret");
    await writeDurably(secret, "{}");
    assertEquals(await removeIfExists(secret), true);
    await cut(fs);
    assertEquals(await Deno.stat(secret).then(() => "there", () => "gone"), "gone");
  });
});

Deno.test("a new agent database keeps a committed write action's row across a power cut", async () => {
  await withFs(async (fs) => {
    const path = join(fs.path, "data/agent.db");
    const db = await openAgentDb(path, createLogger("test", { sink: new MemorySink() }));
    db.prepare("INSERT INTO actions (id, request, state, received_at) VALUES ('a1', '{}', 'accepted', 1)")
      .run();
    db.close();
    await cut(fs);
    const again = new DatabaseSync(path);
    try {
      assertEquals(
        (again.prepare("SELECT state FROM actions WHERE id = 'a1'").get() as { state: string } | undefined)
          ?.state,
        "accepted",
      );
    } finally {
      again.close();
    }
  });
});

Deno.test("a data folder an earlier start created but died before syncing is synced at the next start", async () => {
  await withFs(async (fs) => {
    const data = join(fs.path, "data");
    await Deno.mkdir(data); // the earlier start, killed before it synced the parent
    await ensureDirectory(data, "the data directory");
    await cut(fs);
    assertEquals((await Deno.stat(data)).isDirectory, true);
  });
});
