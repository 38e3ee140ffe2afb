/**
 * The `agent` executable.
 *
 *   agent [run] [--config FILE] [--<key>=<value>…]   run the daemon (default)
 *   agent configure --url URL                          set the identity service URL (writes params)
 *   agent watchdog [--config FILE] [--<key>=<value>…]  run the change logger and hung-change watchdog daemon
 *   agent configure --check                            validate every setting; print each daemon's settings digest
 *   agent status [--json]                              what the daemons report about themselves
 *   agent doctor                                       the checks a support engineer would run
 *   agent check                                        can this revision run here (the snap's post-refresh hook)
 *   agent --help | --version
 *
 * Exit codes: 0 stopped cleanly (SIGTERM/SIGINT/SIGHUP) or done; 1 other failure (doctor: a check failed);
 * 2 bad command line; 3 status: a daemon is not running; 73 a data directory cannot be used; 75 another daemon of
 * the same kind uses the data directory; 78 invalid configuration.
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { LocalApi } from "./lib/agent.ts";
import { ConfigError, describeConfig, loadConfig, settingsDigest } from "./lib/config.ts";
import { type AgentConfig, SETTINGS } from "./lib/settings.ts";
import type { OpenSession } from "./lib/dms/link.ts";
import type { ParamsFile } from "./lib/identity/params.ts";
import { installLastResortGuard } from "./lib/guard.ts";
import type { InstanceLock } from "./lib/instance_lock.ts";
import type { ProcessIdentity } from "./lib/system/process.ts";
import type { Notifier } from "./lib/system/sd_notify.ts";
import type { Proxies, ProxySource } from "./lib/net/proxy.ts";
import type { ConnectionOptions as NatsOptions } from "nats";
import { addSecret, createLogger, type Logger } from "./lib/log.ts";
import type { AgentStatus } from "./lib/agent_status.ts";
import { type AgentPaths, processPaths } from "./lib/paths.ts";
import type { SnapdClient } from "./lib/snapd/client.ts";
import { VERSION } from "./lib/version.ts";
import { errorMessage } from "./lib/errors.ts";
import { runSnapctl } from "./lib/adapters/snapctl.ts";

// Each command loads only what it uses (`await import`): the agent daemon does not carry the watchdog, the
// doctor or — unless the local API is enabled — NATS; the watchdog daemon does not carry MQTT. Memory on a small
// device is the reason.

const EXIT_USAGE = 2;
/** A data directory the daemon cannot use (sysexits' EX_CANTCREAT). */
const EXIT_DIRECTORY = 73;
/** Another daemon of the same kind holds the data directory (EX_TEMPFAIL: it may be gone at the next try). */
const EXIT_LOCKED = 75;
const EXIT_CONFIG = 78;

const USAGE = `iot-agent ${VERSION} — device management agent for Ubuntu and Ubuntu Core

Usage:
  agent [run] [--config FILE] [--KEY=VALUE ...]   run the agent daemon (default command)
  agent configure --url URL                         set the IoT Identity service URL (writes params)
  agent watchdog [--config FILE] [--KEY=VALUE ...]  run the change logger and watchdog daemon
  agent configure --check                           validate every setting (the snap's configure hook runs it)
  agent status [--json]                             enrollment, broker, health, outbox, NATS, watchdog, change store
  agent doctor                                      run the support checks; exit 1 when one fails
  agent check                                       can this revision run here? (the snap's post-refresh hook)
  agent --help | --version

Settings (KEY, also IOTAGENT_<KEY> in the environment, or in the JSON file of --config / IOTAGENT_CONFIG):
${Object.entries(SETTINGS).map(([key, s]) => `  --${key.padEnd(22)} ${s.description}`).join("\n")}
`;

function fail(message: string, code: number): never {
  console.error(`agent: ${message}`);
  Deno.exit(code);
}

/** The commands. */
const COMMANDS = ["run", "watchdog", "configure", "status", "doctor", "check", "help", "version"];

/**
 * The command when none is given: `run` (the daemon), or what `IOTAGENT_DEFAULT_COMMAND` names — the snap's
 * `iot-agent` app sets `help`, so that `sudo iot-agent` alone never starts a second daemon by hand.
 */
function defaultCommand(): string {
  return Deno.env.get("IOTAGENT_DEFAULT_COMMAND") || "run";
}

function parseCommandLine(args: string[]) {
  const settingOptions = Object.fromEntries(
    Object.keys(SETTINGS).map((key) => [key, { type: "string" as const }]),
  );
  try {
    const { values, positionals } = parseArgs({
      args,
      strict: true,
      allowPositionals: true,
      options: {
        ...settingOptions,
        config: { type: "string" },
        url: { type: "string", short: "u" },
        check: { type: "boolean" },
        json: { type: "boolean" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean" },
      },
    });
    const { config, url, help, version, check, json, ...flags } = values as Record<
      string,
      string | boolean | undefined
    >;
    if (positionals.length > 1) {
      const [first, second] = positionals;
      // `iot-agent.agent status` in a snap runs `agent run status`: say which command was meant
      const meant = first === "run" && COMMANDS.includes(second) ? ` (the command is "agent ${second}")` : "";
      throw new TypeError(`unexpected argument "${second}"${meant}`);
    }
    return {
      command: help ? "help" : version ? "version" : positionals[0] ?? defaultCommand(),
      configFile: config as string | undefined,
      url: url as string | undefined,
      check: check === true,
      json: json === true,
      flags: flags as Record<string, string>,
    };
  } catch (error) {
    fail(`${errorMessage(error)} (see agent --help)`, EXIT_USAGE);
  }
}

/** What a daemon body gets. */
interface DaemonContext {
  config: AgentConfig;
  paths: AgentPaths;
  log: Logger;
  /** This process, as its status file names it. */
  identity: ProcessIdentity;
  /** systemd's notification socket, when systemd started the daemon (`$NOTIFY_SOCKET`). */
  notifier?: Notifier;
}

/**
 * Loads the configuration, sets up logging, signals and the last-resort guard; then runs `body` until SIGTERM or
 * SIGINT. `body` returns what to do after an error nothing handled.
 */
async function daemon(
  name: string,
  configFile: string | undefined,
  flags: Record<string, string>,
  body: (
    context: DaemonContext,
    signal: AbortSignal,
    onFault: (recover: (reason: string) => void) => void,
  ) => Promise<void>,
): Promise<void> {
  const loaded = await settings(configFile, flags);
  const { config, paths } = loaded;
  const lock = await claimDataDirectory(name, paths);
  addSecret(config["nats.snapd.password"]);
  for (const url of config["nats.url"]) {
    const password = URL.parse(url)?.password ?? "";
    addSecret(password);
    try {
      addSecret(decodeURIComponent(password)); // the form nats.js sends
    } catch {
      // a stray % is not an escape: the raw form above is the one that travels
    }
  }
  const log = createLogger(name, { level: config["log.level"] });
  log.info(`iot-agent ${VERSION} ${name} starting`, {
    data: paths.dataDir,
    common: paths.commonDir,
    paths: paths.origin,
  });
  for (const line of describeConfig(loaded)) log.debug(`setting ${line}`);
  for (const warning of loaded.warnings) log.warn(warning);

  let recover = (_reason: string) => {};
  const removeGuard = installLastResortGuard({
    log: log.child("guard"),
    onFault: (reason) => recover(reason),
  });
  const stop = new AbortController();
  // SIGHUP too: a daemon asked to hang up stops cleanly (under snapd it is started again with fresh settings)
  for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const) {
    Deno.addSignalListener(signal, () => {
      if (!stop.signal.aborted) log.info(`caught ${signal}, stopping`);
      stop.abort();
    });
  }
  const [{ ownIdentity }, { systemdNotifier }] = await Promise.all([
    import("./lib/system/process.ts"),
    import("./lib/system/sd_notify.ts"),
  ]);
  const identity = await ownIdentity();
  const notifier = systemdNotifier(Deno.env.toObject(), paths.runtimeDir, log.child("systemd"));
  await body({ config, paths, log, identity, notifier }, stop.signal, (handler) => (recover = handler));
  removeGuard();
  lock.release();
  log.info("stopped");
}

/**
 * The data directories must be usable, and no other daemon of this kind may use them: one line and a documented
 * exit code otherwise, never a stack trace.
 */
async function claimDataDirectory(name: string, paths: AgentPaths): Promise<InstanceLock> {
  const { ensureDirectory, UnusableDirectoryError } = await import("./lib/files.ts");
  const { InstanceLockedError, lockInstance } = await import("./lib/instance_lock.ts");
  try {
    await ensureDirectory(paths.dataDir, "the data directory, $SNAP_DATA");
    await ensureDirectory(paths.commonDir, "the common directory, $SNAP_COMMON");
    return await lockInstance(join(paths.dataDir, `${name}.lock`));
  } catch (error) {
    if (error instanceof UnusableDirectoryError) fail(error.message, EXIT_DIRECTORY);
    if (error instanceof InstanceLockedError) {
      fail(
        `another ${name} (${error.pid ? `pid ${error.pid}` : "a running process"}) uses ${paths.dataDir}`,
        EXIT_LOCKED,
      );
    }
    throw error;
  }
}

/** The agent daemon, wired to the real ports: snapd, the agent database, MQTT, NATS, uploads, /proc, the clock. */
export async function runAgentDaemon(
  { config, paths, log, identity, notifier }: DaemonContext,
  signal: AbortSignal,
  onFault: (recover: (reason: string) => void) => void = () => {},
): Promise<void> {
  const [{ Agent }, { openAgentDb }, { ParamsFile }, { CredentialsStore }, { uploadStream }, metrics, clock] =
    await Promise.all([
      import("./lib/agent.ts"),
      import("./lib/store/agent_db.ts"),
      import("./lib/identity/params.ts"),
      import("./lib/identity/credentials.ts"),
      import("./lib/uploads.ts"),
      import("./lib/system/metrics.ts"),
      import("./lib/clock.ts"),
    ]);
  const snapd = await snapdClient(config, log);
  const [proxying, { watchRemoval }, { requestEnrollment }] = await Promise.all([
    import("./lib/net/proxy.ts"),
    import("./lib/adapters/file_watch.ts"),
    import("./lib/adapters/identity_http.ts"),
  ]);
  const proxies = await dialProxies(config, snapd, log.child("proxy"));
  const db = await openAgentDb(join(paths.dataDir, "agent.db"), log.child("store"));
  const params = new ParamsFile(paths, log.child("params"), {
    allowInsecureHttp: config["identity.allow-insecure-http"],
  });
  try {
    const agent = new Agent({
      config,
      paths,
      log,
      identity,
      ports: {
        snapd,
        db,
        params,
        credentials: new CredentialsStore(paths, log.child("credentials")),
        openSession: await mqttSessions(config, log.child("dms.mqtt"), proxies, params),
        upload: (url, body, length) =>
          uploadStream(url, body, length, { proxies, timeoutMs: config["uploads.timeout"] }),
        readMetrics: (deviceId, onError) => metrics.readMetrics(deviceId, onError),
        clock: clock.systemClock,
        startLocalApi: config["nats.enabled"]
          ? await localApi(config, paths, snapd, log.child("nats"), proxies)
          : undefined,
        notifier,
        snapHealth: paths.inSnap ? await snapHealth(log.child("health")) : undefined,
        requestEnrollment: (url, body, options) =>
          requestEnrollment(url, body, { ...options, client: proxying.httpClientFor(proxies, new URL(url)) }),
        watchRemoval,
      },
    });
    onFault((reason) => agent.recover(reason));
    await agent.run(signal);
  } finally {
    db.close();
    snapd.close();
  }
}

/** The snap's health in snapd, told through `snapctl set-health`. */
async function snapHealth(log: Logger) {
  const { SnapHealth } = await import("./lib/snap_health.ts");
  return new SnapHealth(runSnapctl, log);
}

/** The snapd REST client of a daemon. */
async function snapdClient(config: AgentConfig, log: Logger): Promise<SnapdClient> {
  const [{ openSnapd }, { systemClock }] = await Promise.all([
    import("./lib/adapters/snapd_http.ts"),
    import("./lib/clock.ts"),
  ]);
  return openSnapd({
    socketPath: config["snapd.socket"],
    timeoutMs: config["snapd.timeout"],
    maxRequests: config["snapd.max-requests"],
    log: log.child("snapd"),
    clock: systemClock,
  });
}

/** The proxies the agent dials through, logged once (credentials hidden, their passwords kept out of the log). */
async function dialProxies(config: AgentConfig, snapd: SnapdClient, log: Logger): Promise<Proxies> {
  const { agentProxies, describeProxies, snapdProxySettings } = await import("./lib/net/agent_proxies.ts");
  const proxies = await agentProxies(
    config,
    proxyEnvironment,
    snapdProxySettings(snapd),
  );
  for (const url of [proxies.http, proxies.https]) {
    if (url?.password) addSecret(decodeURIComponent(url.password));
  }
  if (proxies.http || proxies.https) log.info("dialling through proxies", describeProxies(proxies));
  return proxies;
}

async function mqttSessions(
  config: AgentConfig,
  log: Logger,
  proxies: Proxies,
  params: ParamsFile,
): Promise<OpenSession> {
  const [
    { MqttSession },
    { brokerTrust },
    { systemClock },
    { brokerResolver, brokerTunnel },
    { parseBrokerEntry },
  ] = await Promise.all([
    import("./lib/mqtt/session.ts"),
    import("./lib/mqtt/tls.ts"),
    import("./lib/clock.ts"),
    import("./lib/net/agent_proxies.ts"),
    import("./lib/mqtt/broker_address.ts"),
  ]);
  const moreBrokers = (config["mqtt.brokers"] ?? []).map(parseBrokerEntry);
  return async (enrollment, handlers) =>
    new MqttSession({
      host: enrollment.credentials.mqttUrl,
      port: enrollment.credentials.mqttPort,
      clientId: enrollment.id,
      certificate: enrollment.credentials.certificate,
      privateKey: enrollment.credentials.privateKey,
      trust: await brokerTrust({
        verify: config["mqtt.verify"],
        caFile: config["mqtt.ca"],
        organizationRoot: enrollment.organization.rootcert,
        organizationRootFrom: await identityUrlOf(params),
      }),
      keepaliveMs: config["mqtt.keepalive"],
      reconnectSpreadMs: config["mqtt.reconnect-spread"],
      backoff: { initialMs: config["backoff.initial"], maxMs: config["backoff.max"] },
      log,
      clock: systemClock,
      tunnel: brokerTunnel(proxies),
      moreBrokers,
      resolve: brokerResolver(proxies),
      failbackMs: config["mqtt.failback-interval"],
      ...handlers,
    });
}

/** The identity service URL the enrollment came from, as `params` holds it (refused or not). */
async function identityUrlOf(params: ParamsFile): Promise<string | undefined> {
  const state = await params.inspect();
  return state.kind === "configured" ? state.params.url : state.kind === "refused" ? state.url : undefined;
}

/** Starts the local NATS API (loaded only when enabled); it never delays enrollment or MQTT. */
async function localApi(
  config: AgentConfig,
  paths: AgentPaths,
  snapd: SnapdClient,
  log: Logger,
  proxies: Proxies,
): Promise<(status: () => AgentStatus) => LocalApi> {
  const [
    { NatsService },
    { systemClock },
    { operatorHints },
    { natsTunnel },
    { connectNats },
    { DEFAULT_PASSWORD_RISK, privatePasswordHint, writeRefusal: refusalFor },
  ] = await Promise
    .all([
      import("./lib/nats/service.ts"),
      import("./lib/clock.ts"),
      import("./lib/operator_hints.ts"),
      import("./lib/net/agent_proxies.ts"),
      import("./lib/adapters/nats_connect.ts"),
      import("./lib/nats/write_guard.ts"),
    ]);
  const password = config["nats.snapd.password"];
  const writeRefusal = refusalFor(password, operatorHints(paths));
  if (writeRefusal) {
    log.warn(
      `the local API refuses every write: ${DEFAULT_PASSWORD_RISK}; ${
        privatePasswordHint(operatorHints(paths))
      }`,
    );
  }
  const caFile = config["nats.ca"];
  const ca = caFile ? await Deno.readTextFile(caFile) : undefined;
  return (status) => {
    const service = new NatsService({
      servers: config["nats.url"],
      password,
      ca,
      connect: (options) => connectNats(options, natsTunnel(proxies)),
      // the local API's snapd requests give way to the DMS's when snapd's request limit is reached
      ports: { snapd: snapd.yielding(), status, writeRefusal },
      bounds: {
        maxInFlight: config["nats.max-in-flight"],
        maxWaiting: config["nats.max-waiting"],
        maxWaitingBytes: config["nats.max-waiting-bytes"],
      },
      log,
      clock: systemClock,
      backoff: { initialMs: config["backoff.initial"], maxMs: config["backoff.max"] },
    });
    service.start();
    return service;
  };
}

/** The watchdog daemon, wired to snapd, the change store, systemd's reboot and the clock. */
export async function runWatchdog(
  { config, paths, log, identity, notifier }: DaemonContext,
  signal: AbortSignal,
): Promise<void> {
  const [
    { ChangeStore },
    { changeDatabasePath },
    { runWatchdogDaemon },
    { systemdPower },
    { systemClock },
    { readBoot },
  ] = await Promise.all([
    import("./lib/changes/store.ts"),
    import("./lib/changes/location.ts"),
    import("./lib/watchdog_daemon.ts"),
    import("./lib/system/power.ts"),
    import("./lib/clock.ts"),
    import("./lib/system/boot.ts"),
  ]);
  const boot = await readBoot();
  const snapd = await snapdClient(config, log);
  const store = await ChangeStore.open(
    changeDatabasePath(config, paths, Deno.env.toObject()),
    log.child("store"),
  );
  try {
    await runWatchdogDaemon(
      { config, paths, log, snapd, store, power: systemdPower, clock: systemClock, boot, identity, notifier },
      signal,
    );
  } finally {
    store.close();
    snapd.close();
  }
}

/** Loads and validates the configuration, or exits with the one-line message. */
async function settings(configFile: string | undefined, flags: Record<string, string>) {
  const paths = processPaths();
  try {
    return {
      paths,
      ...(await loadConfig({
        flags,
        configFile,
        env: Deno.env.toObject(),
        inSnap: paths.inSnap,
        snapctl: runSnapctl,
      })),
    };
  } catch (error) {
    if (error instanceof ConfigError) fail(error.message, EXIT_CONFIG);
    throw error;
  }
}

/** `configure --check`: every setting valid; prints `agent=<digest>` and `watchdog=<digest>`. */
async function checkConfiguration(
  configFile: string | undefined,
  flags: Record<string, string>,
): Promise<void> {
  const { config } = await settings(configFile, flags);
  console.log(`agent=${await settingsDigest(config, "agent")}`);
  console.log(`watchdog=${await settingsDigest(config, "watchdog")}`);
}

/** `status [--json]`; returns the exit code: 0 when both daemons run, 3 otherwise. */
async function status(
  configFile: string | undefined,
  flags: Record<string, string>,
  json: boolean,
): Promise<number> {
  const { config, paths } = await settings(configFile, flags);
  const { formatStatus, readStatus, statusExitCode } = await import("./lib/status_report.ts");
  const report = await readStatus(config, paths, Deno.env.toObject());
  console.log(json ? JSON.stringify(report, null, 2) : formatStatus(report, Date.now()));
  return statusExitCode(report);
}

/** `check`: can this revision run here (the snap's post-refresh hook)? 0 when it can, 1 when it cannot. */
async function checkRevision(configFile: string | undefined, flags: Record<string, string>): Promise<number> {
  const { config, paths } = await settings(configFile, flags);
  const { formatCheck, selfCheck } = await import("./lib/self_check.ts");
  const log = createLogger("check", { level: "off" });
  const { text, ok } = formatCheck(await selfCheck(config, paths, Deno.env.toObject(), log));
  console.log(text);
  return ok ? 0 : 1;
}

async function doctor(configFile: string | undefined, flags: Record<string, string>): Promise<number> {
  const { config, paths } = await settings(configFile, flags);
  const [
    { formatDoctor, runDoctor },
    { agentProxies, natsTunnel, snapdProxySettings },
    { openSnapd },
    { systemClock },
    { connectNats },
    { freeBytes },
  ] = await Promise.all([
    import("./lib/doctor/doctor.ts"),
    import("./lib/net/agent_proxies.ts"),
    import("./lib/adapters/snapd_http.ts"),
    import("./lib/clock.ts"),
    import("./lib/adapters/nats_connect.ts"),
    import("./lib/adapters/free_space.ts"),
  ]);
  const log = createLogger("doctor", { level: "off" });
  // a short time limit, and no retries beyond it: the doctor reports, it does not wait
  const snapd = openSnapd({ socketPath: config["snapd.socket"], timeoutMs: 5000, clock: systemClock });
  try {
    let proxies: Proxies;
    try {
      proxies = await agentProxies(config, proxyEnvironment, snapdProxySettings(snapd));
    } catch (error) {
      fail(errorMessage(error), EXIT_CONFIG);
    }
    const env = Deno.env.toObject();
    const natsConnect = (options: NatsOptions) => connectNats(options, natsTunnel(proxies, 5000));
    const report = await runDoctor({
      config,
      paths,
      env,
      log,
      proxies,
      snapd,
      natsConnect,
      snapctl: runSnapctl,
      freeBytes,
      now: systemClock.now(),
    });
    const { text, failed } = formatDoctor(report);
    console.log(text);
    return failed ? 1 : 0;
  } finally {
    snapd.close();
  }
}

async function configure(
  url: string | undefined,
  configFile: string | undefined,
  flags: Record<string, string>,
): Promise<void> {
  if (!url) fail("configure needs --url URL (or --check)", EXIT_USAGE);
  const { ParamsFile, validateIdentityUrl } = await import("./lib/identity/params.ts");
  // the settings decide whether plain http is allowed, so they are read (and validated) first
  const { config, paths } = await settings(configFile, flags);
  const urlOptions = { allowInsecureHttp: config["identity.allow-insecure-http"] };
  try {
    validateIdentityUrl(url, urlOptions);
  } catch (error) {
    fail(errorMessage(error), EXIT_CONFIG);
  }
  const log = createLogger("configure", { timestamps: false });
  await new ParamsFile(paths, log, urlOptions).write(url);
  console.log(`Using url ${url} (written to ${paths.params})`);
}

/** The standard proxy variables, taken out of the environment before any client exists (see proxy.ts). */
let proxyEnvironment: ProxySource = { name: "the environment" };

if (import.meta.main) {
  proxyEnvironment = (await import("./lib/net/proxy.ts")).takeProxyEnvironment();
  const { command, configFile, url, check, json, flags } = parseCommandLine(Deno.args);
  try {
    switch (command) {
      case "help":
        console.log(USAGE);
        break;
      case "version":
        console.log(VERSION);
        break;
      case "run":
        await daemon("agent", configFile, flags, runAgentDaemon);
        break;
      case "watchdog":
        await daemon("watchdog", configFile, flags, runWatchdog);
        break;
      case "configure":
        await (check ? checkConfiguration(configFile, flags) : configure(url, configFile, flags));
        break;
      case "status":
        Deno.exit(await status(configFile, flags, json));
        break;
      case "doctor":
        Deno.exit(await doctor(configFile, flags));
        break;
      case "check":
        Deno.exit(await checkRevision(configFile, flags));
        break;
      default:
        fail(`unknown command "${command}" (see agent --help)`, EXIT_USAGE);
    }
  } catch (error) {
    // one line: what went wrong, never a stack trace (an operator reads this in the journal)
    fail(error instanceof Error ? error.message : String(error), 1);
  }
  Deno.exit(0);
}
