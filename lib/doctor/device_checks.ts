/** The doctor's checks of the device itself: snapd, its assertions, the change database, the disk. */
import { DatabaseSync } from "node:sqlite";
import { type CheckResult, fail, ok, warn } from "./check_result.ts";
import type { OperatorHints } from "../operator_hints.ts";
import type { SnapdClient } from "../snapd/client.ts";
import { errorMessage } from "../errors.ts";
import type { Snapctl } from "../adapters/snapctl.ts";

const MIB = 1024 * 1024;

export async function checkSnapd(
  snapd: SnapdClient,
  inSnap: boolean,
  snapctl: Snapctl,
  hints: OperatorHints,
): Promise<CheckResult> {
  const name = "snapd";
  if (inSnap && !(await snapctl(["is-connected", "snapd-control"]).then((r) => r.success, () => false))) {
    return fail(name, "the snapd-control interface is not connected", hints.connect("snapd-control"));
  }
  try {
    const info = await snapd.systemInfo();
    return ok(name, `snapd ${info.version} answers on ${snapd.socketPath}`);
  } catch (error) {
    return fail(
      name,
      `snapd does not answer on ${snapd.socketPath}: ${errorMessage(error)}`,
      "is snapd running?",
    );
  }
}

export async function checkAssertions(snapd: SnapdClient): Promise<CheckResult> {
  const name = "assertions";
  try {
    const [model, serial] = [await snapd.assertions("model"), await snapd.assertions("serial")];
    if (model.count === 0) {
      return fail(name, "no model assertion", "the device image has no model: reinstall it");
    }
    if (serial.count === 0) {
      return fail(
        name,
        "no serial assertion yet",
        "the device gets one from its brand's serial vault; check its network",
      );
    }
    return ok(name, "model and serial assertions present");
  } catch (error) {
    return fail(name, `cannot read the assertions: ${errorMessage(error)}`);
  }
}

export function checkChangeDatabase(path: string): CheckResult {
  const name = "change database";
  let db: DatabaseSync;
  try {
    Deno.statSync(path);
  } catch {
    return warn(name, `${path} does not exist yet`, "is the watchdog daemon running?");
  }
  try {
    db = new DatabaseSync(path, { readOnly: true });
  } catch (error) {
    return fail(
      name,
      `${path} cannot be opened: ${errorMessage(error)}`,
      "the watchdog moves it aside at its next start",
    );
  }
  try {
    const rows = db.prepare("PRAGMA integrity_check").all() as { integrity_check: string }[];
    const verdict = rows.map((row) => row.integrity_check).join("; ");
    return verdict === "ok"
      ? ok(name, `${path} passes PRAGMA integrity_check`)
      : fail(name, `${path}: ${verdict}`, "restart the watchdog: it moves a corrupt database aside");
  } catch (error) {
    return fail(
      name,
      `${path}: ${errorMessage(error)}`,
      "restart the watchdog: it moves a corrupt database aside",
    );
  } finally {
    db.close();
  }
}

export async function checkDisk(
  dir: string,
  freeBytes: (dir: string) => Promise<number>,
): Promise<CheckResult> {
  const name = "disk";
  try {
    const free = await freeBytes(dir);
    const detail = `${(free / MIB).toFixed(0)} MiB free in ${dir}`;
    if (free < 10 * MIB) return fail(name, detail, "free some space: state files cannot be written safely");
    if (free < 100 * MIB) return warn(name, detail, "space is getting low");
    return ok(name, detail);
  } catch (error) {
    return fail(name, `cannot tell the free space in ${dir}: ${errorMessage(error)}`);
  }
}
