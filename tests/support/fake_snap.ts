/**
 * A fake snap environment for the hook and unregister tests: `$SNAP` with `bin/agent` and `bin/unregister` that
 * run this checkout, `$SNAP_DATA`/`$SNAP_COMMON`, and a fake `snapctl` on PATH that keeps the snap's configuration
 * in a JSON file (get -d, get KEY, set KEY=VALUE, unset) and records every call.
 */
import { join } from "node:path";
import { PROJECT_ROOT } from "./agent_process.ts";

/** A fake snap. */
export interface FakeSnap {
  dir: string;
  env: Record<string, string>;
  /** The snap's configuration (what `snap set` stored). */
  config(): Promise<Record<string, unknown>>;
  setConfig(values: Record<string, unknown>): Promise<void>;
  /** `snapctl` calls so far, one string each. */
  calls(): Promise<string[]>;
  remove(): Promise<void>;
}

const SNAPCTL = `#!/usr/bin/env python3
import json, os, sys
state = os.environ["FAKE_SNAPCTL_STATE"]
with open(os.environ["FAKE_SNAPCTL_CALLS"], "a") as f:
    f.write(" ".join(sys.argv[1:]) + "\\n")
config = json.load(open(state)) if os.path.exists(state) else {}
def lookup(key):
    node = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node
def store(key, value):
    node = config
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
args = sys.argv[1:]
if args[:2] == ["get", "-d"]:
    print(json.dumps(config))
elif args[:1] == ["get"]:
    value = lookup(args[1])
    print("" if value is None else value if isinstance(value, str) else json.dumps(value))
elif args[:1] == ["set"]:
    for pair in args[1:]:
        key, _, value = pair.partition("=")
        try:
            value = json.loads(value)
        except ValueError:
            pass
        store(key, value)
    json.dump(config, open(state, "w"))
elif args[:1] in (["restart"], ["start"], ["stop"], ["is-connected"], ["set-health"]):
    sys.exit(int(os.environ.get("FAKE_SNAPCTL_FAIL_" + args[0].upper().replace("-", "_"), "0")))
else:
    print("fake snapctl: unsupported " + " ".join(args), file=sys.stderr)
    sys.exit(2)
`;

/** Options of {@link fakeSnap}. */
export interface FakeSnapOptions {
  /** `$SNAP_INSTANCE_NAME`, as snapd sets it for a parallel install (`iot-agent_foo`). @default "iot-agent" */
  instanceName?: string;
}

/** Creates a fake snap named `iot-agent` (installed as `instanceName`). */
export async function fakeSnap(options: FakeSnapOptions = {}): Promise<FakeSnap> {
  const dir = await Deno.makeTempDir({ prefix: "fake-snap-" });
  const snap = join(dir, "snap");
  const bin = join(dir, "path");
  const data = join(dir, "data");
  const common = join(dir, "common");
  for (const path of [join(snap, "bin"), bin, data, common]) await Deno.mkdir(path, { recursive: true });
  await Deno.writeTextFile(join(bin, "snapctl"), SNAPCTL, { mode: 0o755 });
  for (const [name, script] of [["agent", "main.ts"], ["unregister", "unregister.ts"]]) {
    await Deno.writeTextFile(
      join(snap, "bin", name),
      `#!/bin/sh\nexec "${Deno.execPath()}" run --allow-all --unstable-net "${
        join(PROJECT_ROOT, script)
      }" "$@"\n`,
      { mode: 0o755 },
    );
  }
  const state = join(dir, "snapctl.json");
  const calls = join(dir, "snapctl.calls");
  await Deno.writeTextFile(calls, "");
  const env = {
    SNAP: snap,
    SNAP_NAME: "iot-agent",
    // snapd sets both; they differ only in a parallel install
    SNAP_INSTANCE_NAME: options.instanceName ?? "iot-agent",
    SNAP_DATA: data,
    SNAP_COMMON: common,
    PATH: `${bin}:${Deno.env.get("PATH")}`,
    FAKE_SNAPCTL_STATE: state,
    FAKE_SNAPCTL_CALLS: calls,
    NO_COLOR: "1",
  };
  return {
    dir,
    env,
    config: async () => JSON.parse(await Deno.readTextFile(state).catch(() => "{}")),
    setConfig: (values) => Deno.writeTextFile(state, JSON.stringify(values)),
    calls: async () => (await Deno.readTextFile(calls)).split("\n").filter((line) => line !== ""),
    remove: () => Deno.remove(dir, { recursive: true }),
  };
}

/** Runs a command in the fake snap's environment. */
export async function runIn(
  snap: FakeSnap,
  command: string,
  args: string[] = [],
  extraEnv: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(command, {
    args,
    env: { ...snap.env, ...extraEnv },
    cwd: snap.dir,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}
