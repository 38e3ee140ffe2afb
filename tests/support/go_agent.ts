/**
 * The Go agent this one replaces (everactive/iot-agent 2021.06, built by the test bed beside the project — never
 * needed by the tests), run against a world's broker and snapd for side-by-side figures: an enrollment of its own
 * (a `.secret` and `params` as its `configure` writes them, a client certificate from the world's CA, a grant in
 * the broker's ACL), snapd reached through `SNAPPY_GLOBAL_ROOT` (`<root>/run/snapd.socket`). It will not enroll nor
 * connect to the broker before it reached NATS at `nats://localhost:4222` (one of its known defects), so a NATS
 * server with the shipped configuration listens there while it runs.
 */
import { join } from "node:path";
import { Child } from "./child.ts";
import { preEnroll } from "./enrolled_device.ts";
import { goParams } from "./go_files.ts";
import { NatsServer } from "./nats_server.ts";
import { DEFAULT_NATS_PASSWORD } from "../../lib/settings.ts";
import type { Mosquitto } from "./mosquitto.ts";
import type { World } from "./world.ts";

/** A running Go agent. */
export interface GoAgent {
  id: string;
  /** The current process. */
  readonly child: Child;
  /** Starts it again (after its process stopped); resolves once it listens for actions again. */
  respawn(): Promise<Child>;
  stop(): Promise<void>;
}

/** The Go agent's device id (a KSUID-shaped id of its own). */
export const GO_DEVICE_ID = "2F0tGoAgentSideBySide000000";

/**
 * Starts the Go agent at `binary` for `world` (a mosquitto world), talking to snapd at `snapdSocket`; resolves once
 * its subscription to its actions is in place.
 */
export async function startGoAgent(
  world: World<Mosquitto>,
  binary: string,
  snapdSocket: string,
): Promise<GoAgent> {
  const dir = await Deno.makeTempDir({ prefix: "go-agent-" });
  const data = join(dir, "current");
  const root = join(dir, "root");
  await Deno.mkdir(data, { recursive: true });
  await Deno.mkdir(join(root, "run"), { recursive: true });
  await Deno.symlink(snapdSocket, join(root, "run/snapd.socket"));
  const secret = await preEnroll(
    world,
    { id: GO_DEVICE_ID, commonName: "go-agent-device", serial: "GOAGENT1" },
    data,
  );
  await Deno.writeTextFile(join(data, "params"), goParams(world.identity.url, secret), { mode: 0o600 });
  const nats = await NatsServer.fromConfig(
    await Deno.readTextFile(new URL("../../snap/nats-server.conf", import.meta.url)),
    4222,
  );
  const spawn = () =>
    Child.spawn(binary, [], {
      cwd: dir,
      env: {
        SNAP_DATA: data,
        SNAP_COMMON: join(dir, "common"),
        SNAPPY_GLOBAL_ROOT: root,
        // info, as this agent's default (the Go agent's own default is trace)
        LOG_LEVEL: Deno.env.get("GO_AGENT_LOG_LEVEL") ?? "info",
        IOTAGENT_NATS_SNAPD_PASSWORD: DEFAULT_NATS_PASSWORD,
        PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      },
    });
  // it sends health only at its first minute tick: its subscription in the broker's log says it listens
  const subscribed = new RegExp(`${GO_DEVICE_ID} 1 devices/sub/${GO_DEVICE_ID}$`);
  const listening = async (child: Child, mark: number) => {
    await world.broker.log!.waitForLine(subscribed, { after: mark, timeoutMs: 60_000 }).catch(
      async (error) => {
        await child.stop("SIGKILL");
        throw new Error(`${error.message}\nthe Go agent said:\n${child.tail(20)}`);
      },
    );
    return child;
  };
  let mark = world.broker.log!.mark();
  let child = spawn();
  try {
    await listening(child, mark);
  } catch (error) {
    await nats.stop();
    throw error;
  }
  return {
    id: GO_DEVICE_ID,
    get child() {
      return child;
    },
    async respawn() {
      mark = world.broker.log!.mark();
      child = spawn();
      return await listening(child, mark);
    },
    async stop() {
      await child.stop("SIGINT");
      await nats.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
