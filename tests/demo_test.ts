import { assertEquals, assertMatch } from "./support/assert.ts";
import { PROJECT_ROOT } from "./support/agent_process.ts";

for (const variant of [[], ["--embedded"]]) {
  Deno.test({
    name: `deno task demo ${variant.join(" ")} shows enrollment, health, device and list, then stops cleanly`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      const output = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-all", "tests/demo.ts", ...variant],
        cwd: PROJECT_ROOT,
        env: { NO_COLOR: "1" },
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
    },
  });
}
