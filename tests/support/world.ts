/**
 * Everything the agent talks to, started for one test: the test CA, a fake snapd, the identity stub (with the
 * fixture device PEER0001 pre-registered), a real mosquitto and the DMS test client — and the agent's data
 * directories and environment.
 */
import { join } from "node:path";
import { startAgent } from "./agent_process.ts";
import type { Child } from "./child.ts";
import { DmsClient } from "./dms_client.ts";
import { FakeSnapd } from "./fake_snapd.ts";
import { IdentityStub } from "./identity_stub.ts";
import { type DeviceGrant, Mosquitto } from "./mosquitto.ts";
import { TestCA } from "./pki.ts";
import type { SnapdSnap } from "../../lib/snapd/types.ts";

/** The device of the fixture assertions. */
export const FIXTURE_DEVICE = { brand: "peerbrand", model: "peer-model", serial: "PEER0001" };

/** What the world needs of a broker. */
export interface TestBroker {
  /** Where the DMS connects. */
  readonly port: number;
  /** Where devices connect. @default port */
  readonly devicePort?: number;
  grantDevice(device: DeviceGrant, options?: { commands?: boolean }): Promise<void>;
  stop(): Promise<void>;
  /** Stops for good and removes what it wrote (its key among it). @default stop() */
  dispose?(): Promise<void>;
}

/** Options of {@link startWorld}. */
export interface WorldOptions<B extends TestBroker = Mosquitto> {
  /** Starts the broker. @default mosquitto */
  startBroker?: (ca: TestCA) => Promise<B>;
  /** Snaps the fake snapd starts with. @default the captured ones */
  snaps?: SnapdSnap[];
  /** Where the agent's data goes. @default a new temporary directory */
  dir?: string;
  /** Pre-register the fixture device with the identity stub. @default true */
  register?: boolean;
  /** Write `params` with the stub's URL. @default true */
  configure?: boolean;
  /** Trust the test CA through `mqtt.ca`. @default true */
  trustBroker?: boolean;
  /** The broker host the identity service hands out: a name, an IPv4 or an IPv6 literal. @default "localhost" */
  brokerHost?: string;
  /** The DMS keeps a persistent session (see DmsClient.connect). @default false */
  dmsPersistent?: boolean;
  /** The common name of the device certificates the identity stub issues. @default a fresh KSUID each */
  deviceCommonName?: string;
  /** The agent talks to this snapd socket (a real snapd) instead of the world's fake. */
  snapdSocket?: string;
}

/** A started world; `stop()` it at the end of the test. */
export interface World<B extends TestBroker = Mosquitto> {
  ca: TestCA;
  snapd: FakeSnapd;
  identity: IdentityStub;
  broker: B;
  dms: DmsClient;
  dir: string;
  dataDir: string;
  commonDir: string;
  /** Where the daemons' status files go (`$XDG_RUNTIME_DIR/iot-agent`). */
  runtimeDir: string;
  /** Path of the CA certificate file (for `mqtt.ca`). */
  caFile: string;
  /** The agent's environment: paths, snapd socket, broker trust, short backoff. */
  env: Record<string, string>;
  /**
   * Starts the agent (`run` plus `args`) with the world's environment plus `env`; `echo` prefixes its output;
   * `denoFlags` go to `deno run`.
   */
  agent(args?: string[], env?: Record<string, string>, echo?: string, denoFlags?: string[]): Child;
  /**
   * Waits until the agent enrolled and announced itself with health — which it sends once its subscriptions
   * are in place, so actions sent after this are received — and returns the device id.
   */
  online(options?: { after?: number; timeoutMs?: number }): Promise<string>;
  /** Writes `params` as the Go `configure` would. */
  configure(url?: string): Promise<void>;
  stop(): Promise<void>;
}

/** Starts a world. */
export async function startWorld<B extends TestBroker = Mosquitto>(
  options: WorldOptions<B> = {},
): Promise<World<B>> {
  const ca = TestCA.create();
  const startBroker = options.startBroker ??
    ((ca: TestCA) => Mosquitto.start({ ca }) as unknown as Promise<B>);
  const broker = await startBroker(ca);
  const snapd = FakeSnapd.start({ snaps: options.snaps });
  const identity = IdentityStub.start({
    ca,
    mqttHost: options.brokerHost ?? "localhost",
    mqttPort: broker.devicePort ?? broker.port,
    ...(options.deviceCommonName ? { commonName: () => options.deviceCommonName! } : {}),
  });
  identity.onEnrolled = (device) => void broker.grantDevice(device);
  if (options.register ?? true) identity.register(FIXTURE_DEVICE);
  const dms = await DmsClient.connect({ port: broker.port, ca, persistent: options.dmsPersistent });
  const dir = options.dir ?? await Deno.makeTempDir({ prefix: "iot-agent-test-" });
  const dataDir = join(dir, "data");
  const commonDir = join(dir, "common");
  await Deno.mkdir(dataDir, { mode: 0o700 });
  await Deno.mkdir(commonDir, { mode: 0o700 });
  const caFile = join(dir, "broker-ca.pem");
  await Deno.writeTextFile(caFile, ca.certPem);
  const env: Record<string, string> = {
    SNAP_DATA: dataDir,
    SNAP_COMMON: commonDir,
    XDG_RUNTIME_DIR: join(dir, "run"),
    IOTAGENT_SNAPD_SOCKET: options.snapdSocket ?? snapd.socketPath,
    IOTAGENT_BACKOFF_INITIAL: "100ms",
    IOTAGENT_BACKOFF_MAX: "500ms",
    IOTAGENT_MQTT_RECONNECT_SPREAD: "300ms",
    IOTAGENT_LOG_LEVEL: "debug",
    IOTAGENT_NATS_ENABLED: "false", // tests that need the local API turn it on with their own server
    ...(options.trustBroker ?? true ? { IOTAGENT_MQTT_CA: caFile } : {}),
  };
  const children: Child[] = [];
  const world: World<B> = {
    ca,
    snapd,
    identity,
    broker,
    dms,
    dir,
    dataDir,
    commonDir,
    runtimeDir: join(dir, "run", "iot-agent"),
    caFile,
    env,
    agent(args = [], extraEnv = {}, echo, denoFlags = []) {
      const child = startAgent(["run", ...args], { ...env, ...extraEnv }, echo, denoFlags);
      children.push(child);
      return child;
    },
    async online(options = {}) {
      const health = await dms.waitFor((m) => m.topic.startsWith("devices/health/"), {
        ...options,
        what: "health",
      });
      return health.topic.split("/")[2];
    },
    async configure(url = identity.url) {
      await Deno.writeTextFile(
        join(dataDir, "params"),
        JSON.stringify({ url, path: join(dataDir, ".secret") }),
        {
          mode: 0o600,
        },
      );
    },
    async stop() {
      await Promise.all(children.map((child) => child.stop("SIGKILL")));
      await dms.close();
      await (broker.dispose ? broker.dispose() : broker.stop());
      await identity.stop();
      await snapd.dispose();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  if (options.configure ?? true) await world.configure();
  return world;
}

/** Test options for tests that run child processes and servers across awaits. */
export const E2E = { sanitizeOps: false, sanitizeResources: false } as const;

/** Runs `fn` in a new world with mosquitto, and stops the world afterwards. */
export async function withWorld(
  fn: (world: World) => Promise<void>,
  options: WorldOptions = {},
): Promise<void> {
  const world = await startWorld<Mosquitto>(options);
  try {
    await fn(world);
  } finally {
    await world.stop();
  }
}
