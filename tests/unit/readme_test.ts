import { assertMatch } from "../support/assert.ts";
import { envName, SETTINGS } from "../../lib/settings.ts";

const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

Deno.test("the README's configuration reference lists every key with its environment variable and default", () => {
  for (const [key, setting] of Object.entries(SETTINGS)) {
    const fallback = setting.fallback === undefined ? "(none)" : `\`${setting.fallback}\``;
    const row = new RegExp(
      `\\|\\s*\`${escape(key)}\`\\s*\\|\\s*\`${envName(key)}\`\\s*\\|\\s*${escape(fallback)}\\s*\\|`,
    );
    assertMatch(readme, row, `README row of ${key}`);
  }
});
