/**
 * `agent check`: can this revision of the agent run on this device? The snap's `post-refresh` hook runs it after a
 * refresh and before the new revision's daemons start; when it fails, the hook fails and snapd reverts the refresh
 * by itself. It checks what a new revision could break: the settings are valid for it, both databases open (and
 * migrate to its schema — as they would at its first start), the stored enrollment is readable, and the executable
 * starts (it is running). Nothing else is changed.
 */
import { readTextIfExists } from "./files.ts";
import { decodeEnrollment } from "./identity/enrollment.ts";
import { join } from "node:path";
import type { Logger } from "./log.ts";
import type { AgentPaths } from "./paths.ts";
import { ChangeStore } from "./changes/store.ts";
import { openAgentDb } from "./store/agent_db.ts";
import { changeDatabasePath } from "./changes/location.ts";
import type { AgentConfig } from "./settings.ts";
import { errorMessage } from "./errors.ts";

/** One item of the check. */
export interface CheckItem {
  what: string;
  ok: boolean;
  detail: string;
}

/** Runs the check; settings were loaded (validated) by the caller. */
export async function selfCheck(
  config: AgentConfig,
  paths: AgentPaths,
  env: Record<string, string | undefined>,
  log: Logger,
): Promise<CheckItem[]> {
  const items: CheckItem[] = [{ what: "settings", ok: true, detail: "every setting is valid" }];
  const attempt = async (what: string, run: () => Promise<string>) => {
    try {
      items.push({ what, ok: true, detail: await run() });
    } catch (error) {
      items.push({ what, ok: false, detail: errorMessage(error) });
    }
  };
  await attempt("agent database", async () => {
    const path = join(paths.dataDir, "agent.db");
    const db = await openAgentDb(path, log);
    db.close();
    return `${path} opens at this revision's schema`;
  });
  await attempt("change database", async () => {
    const store = await ChangeStore.open(changeDatabasePath(config, paths, env), log);
    const count = store.count();
    store.close();
    return `${store.path} opens at this revision's schema (${count} changes)`;
  });
  await attempt("enrollment", async () => {
    const text = await readTextIfExists(paths.credentials);
    if (text === undefined) return "not enrolled yet (no .secret)";
    return `.secret is readable: device ${decodeEnrollment(JSON.parse(text)).id}`;
  });
  return items;
}

/** The report, one line per item; `ok` when every item is. */
export function formatCheck(items: CheckItem[]): { text: string; ok: boolean } {
  return {
    text: items.map((item) => `${item.ok ? "[ ok ]" : "[FAIL]"} ${item.what}: ${item.detail}`).join("\n"),
    ok: items.every((item) => item.ok),
  };
}
