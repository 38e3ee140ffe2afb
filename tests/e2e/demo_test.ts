import { assertEquals, assertMatch } from "../support/assert.ts";
import { PROJECT_ROOT } from "../support/agent_process.ts";

/** Every file under `dir`, with its mode. */
async function filesUnder(dir: string): Promise<{ path: string; mode: number }[]> {
  const out: { path: string; mode: number }[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) out.push(...await filesUnder(path));
    else out.push({ path, mode: (await Deno.lstat(path)).mode! & 0o777 });
  }
  return out;
}

for (const variant of [[], ["--embedded"]]) {
  Deno.test({
    name: `deno task demo ${variant.join(" ")} shows enrollment, health, device and list, then stops cleanly`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      const tmp = await Deno.makeTempDir({ prefix: "demo-tmp-" });
      const output = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-all", "tests/tools/demo.ts", ...variant],
        cwd: PROJECT_ROOT,
        env: { NO_COLOR: "1", TMPDIR: tmp },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
      assertEquals(output.code, 0, text);
      assertMatch(text, /\[agent\] .*enrolled as device \w{27}/);
      assertMatch(text, /◀ health from device \w{27}/);
      assertMatch(text, /"action": "device",[\s\S]*"serial": "PEER0001"[\s\S]*"success": true/);
      assertMatch(text, /◀ reply on devices\/pub\/\w{27}: version 2, snapListHash [0-9a-f]{16}…/);
      assertMatch(text, /network-manager +1\.36\.6-7 +rev 880 +22\/stable +networkmanager \(active\)/);
      assertMatch(new TextDecoder().decode(output.stdout), /▶ stopping the agent and every service\s*$/);
      assertMatch(text, variant.length ? /embedded broker \(aedes\)/ : /MQTT broker +mosquitto on localhost/);
      // the demo cleans up after itself: no key (nor anything else) is left in the temporary directory
      const left = await filesUnder(tmp);
      await Deno.remove(tmp, { recursive: true });
      assertEquals(left, [], "files the demo left behind");
    },
  });
}
