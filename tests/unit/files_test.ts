import { assertEquals, assertMatch, assertRejects } from "../support/assert.ts";
import { moveAside, readTextIfExists, removeIfExists, writeFileAtomic } from "../../lib/files.ts";

Deno.test("writeFileAtomic writes mode 0600, replaces the old content and leaves no temporary file", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/sub/state.json`;
  await writeFileAtomic(path, "one");
  await writeFileAtomic(path, "two");
  assertEquals(await Deno.readTextFile(path), "two");
  assertEquals((await Deno.stat(path)).mode! & 0o777, 0o600);
  assertEquals([...Deno.readDirSync(`${dir}/sub`)].map((e) => e.name), ["state.json"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a failed replace leaves the target as it was and no temporary file behind", async () => {
  const dir = await Deno.makeTempDir();
  const target = `${dir}/state`;
  await Deno.mkdir(target); // rename(2) cannot replace a non-empty directory with a file
  await Deno.writeTextFile(`${target}/keep`, "old");
  await assertRejects(writeFileAtomic(target, "new"));
  assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["state"]);
  assertEquals(await Deno.readTextFile(`${target}/keep`), "old");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("moveAside renames a corrupt file with a time stamp", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/params`, "{corrupt");
  const aside = await moveAside(`${dir}/params`, new Date("2026-01-02T03:04:05.678Z"));
  assertMatch(aside, /params\.corrupt-2026-01-02T03-04-05-678Z$/);
  assertEquals(await readTextIfExists(`${dir}/params`), undefined);
  assertEquals(await Deno.readTextFile(aside), "{corrupt");
  assertEquals(await removeIfExists(aside), true);
  assertEquals(await removeIfExists(aside), false);
  await Deno.remove(dir, { recursive: true });
});
