import { assertEquals, assertMatch, assertThrows } from "../support/assert.ts";
import { buildConfig, ConfigError, describeConfig, loadConfig } from "../../lib/config.ts";
import { DEFAULT_NATS_PASSWORD, envName, SETTINGS } from "../../lib/settings.ts";

/** loadConfig outside a snap: snapctl must not be asked. */
const notInASnap = () => Promise.reject(new Error("snapctl called outside a snap"));

Deno.test("defaults: every documented key has its documented default", () => {
  const { config, origins } = buildConfig({});
  assertEquals(config["snapd.socket"], "/run/snapd.socket");
  assertEquals(config["mqtt.ca"], undefined);
  assertEquals(config["mqtt.verify"], true);
  assertEquals(config["mqtt.keepalive"], 30_000);
  assertEquals(config["health.interval"], 60_000);
  assertEquals(config["metrics.interval"], 60_000);
  assertEquals(config["dms.protocol"], "2");
  assertEquals(config["nats.url"], ["nats://localhost:4222"]);
  assertEquals(config["nats.snapd.password"], DEFAULT_NATS_PASSWORD);
  assertEquals(config["log.level"], "info");
  assertEquals(origins["mqtt.verify"], "default");
});

Deno.test("every key maps to IOTAGENT_ with dots and dashes as underscores", () => {
  assertEquals(envName("nats.snapd.password"), "IOTAGENT_NATS_SNAPD_PASSWORD");
  assertEquals(envName("a.b-c"), "IOTAGENT_A_B_C");
  for (const key of Object.keys(SETTINGS)) assertMatch(envName(key), /^IOTAGENT_[A-Z0-9_]+$/);
});

Deno.test("precedence: defaults < snap < file < environment < flags", () => {
  const sources = {
    snap: {
      health: { interval: "2m" },
      metrics: { interval: "3m" },
      mqtt: { keepalive: "40s" },
      log: { level: "warn" },
    },
    file: {
      path: "/etc/agent.json",
      content: { "metrics.interval": "4m", mqtt: { keepalive: "50s" }, log: { level: "debug" } },
    },
    env: { IOTAGENT_MQTT_KEEPALIVE: "55s", IOTAGENT_LOG_LEVEL: "error" },
    flags: { "log.level": "trace" },
  };
  const { config, origins } = buildConfig(sources);
  assertEquals(config["health.interval"], 120_000);
  assertEquals(origins["health.interval"], "snap");
  assertEquals(config["metrics.interval"], 240_000);
  assertEquals(origins["metrics.interval"], "file /etc/agent.json");
  assertEquals(config["mqtt.keepalive"], 55_000);
  assertEquals(origins["mqtt.keepalive"], "env IOTAGENT_MQTT_KEEPALIVE");
  assertEquals(config["log.level"], "trace");
  assertEquals(origins["log.level"], "flag --log.level");
});

Deno.test("snap configuration: typed JSON values accepted, unknown keys (url, private.*) ignored", () => {
  const { config } = buildConfig({
    snap: {
      url: "http://id:8030",
      private: { nats: { snapd: { password: { hash: "x" } } } },
      mqtt: { verify: false },
    },
  });
  assertEquals(config["mqtt.verify"], false);
});

Deno.test("the file may use nested objects or dotted keys; an unknown key is an error", () => {
  assertEquals(
    buildConfig({ file: { path: "f", content: { "mqtt.verify": "false" } } }).config["mqtt.verify"],
    false,
  );
  assertThrows(
    () => buildConfig({ file: { path: "f.json", content: { mqtt: { veriffy: false } } } }),
    ConfigError,
    'unknown configuration key "mqtt.veriffy" in f.json',
  );
  assertThrows(
    () => buildConfig({ file: { path: "f.json", content: [] } }),
    ConfigError,
    "expected a JSON object",
  );
});

Deno.test("an invalid value gives one line naming the key, the value, its origin and what is allowed", () => {
  const cases: [Record<string, string>, RegExp][] = [
    [
      { IOTAGENT_MQTT_KEEPALIVE: "abc" },
      /^invalid configuration: mqtt\.keepalive="abc" \(from env IOTAGENT_MQTT_KEEPALIVE\): expected a Go duration such as 90s/,
    ],
    [{ IOTAGENT_HEALTH_INTERVAL: "60" }, /health\.interval="60".*expected a Go duration/],
    [{ IOTAGENT_DMS_PROTOCOL: "3" }, /dms\.protocol="3".*expected one of 2, legacy$/],
    [{ IOTAGENT_MQTT_VERIFY: "yes" }, /mqtt\.verify="yes".*expected true or false$/],
    [
      { IOTAGENT_LOG_LEVEL: "loud" },
      /log\.level="loud".*expected one of trace, debug, info, warn, error, off$/,
    ],
    [{ IOTAGENT_NATS_URL: "http://x" }, /nats\.url="http:\/\/x".*nats or tls URLs$/],
    [{ IOTAGENT_MQTT_CA: "relative.pem" }, /mqtt\.ca="relative\.pem".*absolute file path/],
    [{ IOTAGENT_MQTT_KEEPALIVE: "10ms" }, /from 1s to 18h12m15s$/],
  ];
  for (const [env, pattern] of cases) {
    const error = assertThrows(() => buildConfig({ env }), ConfigError) as ConfigError;
    assertMatch(error.message, pattern);
    assertEquals(error.message.includes("\n"), false);
  }
});

Deno.test("a bad secret is named but not shown", () => {
  const error = assertThrows(
    () => buildConfig({ env: { IOTAGENT_NATS_SNAPD_PASSWORD: "" } }),
    ConfigError,
  ) as Error;
  assertMatch(error.message, /nats\.snapd\.password=\(hidden\)/);
});

Deno.test("unknown flags are errors", () => {
  assertThrows(
    () => buildConfig({ flags: { "mqtt.nope": "1" } }),
    ConfigError,
    "unknown configuration flag --mqtt.nope",
  );
});

Deno.test("describeConfig shows durations as written and masks secrets", () => {
  const lines = describeConfig(buildConfig({ env: { IOTAGENT_NATS_SNAPD_PASSWORD: "hunter2-long" } }));
  assertEquals(lines.find((l) => l.startsWith("mqtt.keepalive=")), "mqtt.keepalive=30s (default)");
  const password = lines.find((l) => l.startsWith("nats.snapd.password="));
  assertEquals(password, "nats.snapd.password=*** (env IOTAGENT_NATS_SNAPD_PASSWORD)");
  assertEquals(lines.join("\n").includes("hunter2-long"), false);
});

Deno.test("describeConfig and a refused value hide the user name and password of nats.url", () => {
  const env = { IOTAGENT_NATS_URL: "nats://snapd:url-secret-1@nats.lan:4222, tls://a:url-secret-2@b:4443" };
  const lines = describeConfig(buildConfig({ env }));
  assertEquals(
    lines.find((l) => l.startsWith("nats.url=")),
    "nats.url=nats://***@nats.lan:4222,tls://***@b:4443 (env IOTAGENT_NATS_URL)",
  );
  assertThrows(
    () => buildConfig({ env: { IOTAGENT_NATS_URL: "ftp://snapd:url-secret-3@nats.lan" } }),
    ConfigError,
    'invalid configuration: nats.url="ftp://***@nats.lan" (from env IOTAGENT_NATS_URL)',
  );
});

Deno.test("loadConfig reads IOTAGENT_CONFIG and checks that mqtt.ca exists", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/agent.json`;
  await Deno.writeTextFile(file, JSON.stringify({ dms: { protocol: "legacy" } }));
  const { config } = await loadConfig({ env: { IOTAGENT_CONFIG: file }, inSnap: false, snapctl: notInASnap });
  assertEquals(config["dms.protocol"], "legacy");
  await Deno.writeTextFile(file, "{not json");
  await loadConfig({ env: { IOTAGENT_CONFIG: file }, inSnap: false, snapctl: notInASnap }).then(
    () => Promise.reject(new Error("accepted a broken file")),
    (error) => assertMatch(error.message, /^invalid configuration file .*agent\.json: /),
  );
  await loadConfig({ env: { IOTAGENT_MQTT_CA: `${dir}/missing.pem` }, inSnap: false, snapctl: notInASnap })
    .then(
      () => Promise.reject(new Error("accepted a missing CA file")),
      (error) => assertMatch(error.message, /mqtt\.ca=".*missing\.pem".*expected a readable PEM file/),
    );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("inside a snap the snap's configuration is read with snapctl get -d", async () => {
  const calls: string[][] = [];
  const snapctl = (args: string[]) => {
    calls.push(args);
    const stdout = '{"url":"http://id:8030","mqtt":{"verify":false},"health":{"interval":"5m"}}';
    return Promise.resolve({ success: true, stdout, stderr: "" });
  };
  const { config, origins } = await loadConfig({
    env: { IOTAGENT_HEALTH_INTERVAL: "10m" },
    inSnap: true,
    snapctl,
  });
  assertEquals(config["mqtt.verify"], false);
  assertEquals(origins["mqtt.verify"], "snap");
  assertEquals(config["health.interval"], 600_000, "the environment overrides the snap");
  assertEquals(calls, [["get", "-d"]]);
  const outside = await loadConfig({ env: {}, inSnap: false, snapctl });
  assertEquals(outside.config["mqtt.verify"], true);
  assertEquals(calls, [["get", "-d"]], "snapctl is not called outside a snap");
});

Deno.test("settings at their extremes: durations up to Go's limit, keep-alive within MQTT's 16 bits", () => {
  const env = {
    IOTAGENT_WATCHDOG_CHECK_INTERVAL: "1000h",
    IOTAGENT_HEALTH_INTERVAL: "2562047h",
    IOTAGENT_MQTT_KEEPALIVE: "18h12m15s",
  };
  const { config } = buildConfig({ env });
  assertEquals(config["watchdog.check.interval"], 3_600_000_000);
  assertEquals(config["health.interval"], 2_562_047 * 3_600_000);
  assertEquals(config["mqtt.keepalive"], 65_535_000);
  for (
    const [name, value] of [
      ["IOTAGENT_HEALTH_INTERVAL", "2562048h"],
      ["IOTAGENT_BACKOFF_MAX", "9".repeat(400) + "h"],
      ["IOTAGENT_MQTT_KEEPALIVE", "18h12m16s"],
      ["IOTAGENT_SNAPD_TIMEOUT", "-5s"],
    ]
  ) {
    const error = assertThrows(() => buildConfig({ env: { [name]: value } }), ConfigError) as Error;
    assertMatch(error.message, /expected a Go duration such as 90s, 1h or 1h30m, from .* to /, name);
  }
});

Deno.test("cross-field rules: backoff.initial may not exceed backoff.max; the line names both and their origins", () => {
  const error = assertThrows(
    () => buildConfig({ env: { IOTAGENT_BACKOFF_INITIAL: "5m" } }),
    ConfigError,
  ) as Error;
  assertEquals(
    error.message,
    "invalid configuration: backoff.initial (5m0s) must not exceed backoff.max (2m0s) " +
      "(backoff.initial from env IOTAGENT_BACKOFF_INITIAL, backoff.max from default)",
  );
  assertEquals(buildConfig({ env: { IOTAGENT_BACKOFF_INITIAL: "2m" } }).config["backoff.initial"], 120_000);
});

Deno.test("counts are plain whole numbers; paths are absolute", () => {
  for (const value of ["1e1", "0x10", "8.0", "+8", "", "0", "1001"]) {
    assertThrows(
      () => buildConfig({ env: { IOTAGENT_SNAPD_MAX_REQUESTS: value } }),
      ConfigError,
      "expected a whole number from 1 to 1000, digits only",
    );
  }
  assertEquals(
    buildConfig({ env: { IOTAGENT_SNAPD_MAX_REQUESTS: " 16 " } }).config["snapd.max-requests"],
    16,
  );
  assertThrows(
    () => buildConfig({ file: { path: "f", content: { snapd: { "max-requests": 2.5 } } } }),
    ConfigError,
    "digits only",
  );
  assertThrows(
    () => buildConfig({ env: { IOTAGENT_SNAPD_SOCKET: "run/snapd.socket" } }),
    ConfigError,
    "expected an absolute path",
  );
  assertThrows(
    () => buildConfig({ env: { IOTAGENT_SNAPLOGGER_DATABASE_LOCATION: "changes.db" } }),
    ConfigError,
    "expected an absolute file path",
  );
  assertEquals(
    buildConfig({ env: { IOTAGENT_SNAPLOGGER_DATABASE_LOCATION: "${SNAP_COMMON}/c.db" } }).config[
      "snaplogger.database.location"
    ],
    "${SNAP_COMMON}/c.db",
  );
});

Deno.test("one rule for letter case: words in values are read in any case, paths and passwords as written", () => {
  const { config } = buildConfig({
    env: {
      IOTAGENT_MQTT_VERIFY: "FALSE",
      IOTAGENT_DMS_PROTOCOL: "Legacy",
      IOTAGENT_LOG_LEVEL: "DEBUG",
      IOTAGENT_HEALTH_INTERVAL: "1H30M",
      IOTAGENT_METRICS_INTERVAL: "90S",
      IOTAGENT_NATS_SNAPD_PASSWORD: "MiXeD Case",
      IOTAGENT_MQTT_CA: "/Etc/CA.pem",
    },
  });
  assertEquals(
    [config["mqtt.verify"], config["dms.protocol"], config["log.level"], config["health.interval"]],
    [false, "legacy", "debug", 5_400_000],
  );
  assertEquals(config["metrics.interval"], 90_000);
  assertEquals([config["nats.snapd.password"], config["mqtt.ca"]], ["MiXeD Case", "/Etc/CA.pem"]);
});

Deno.test("an unknown IOTAGENT_ variable is a warning with the nearest name; other agent variables are not", () => {
  const { warnings } = buildConfig({
    env: { IOTAGENT_MQTT_VERIFYY: "false", IOTAGENT_CONFIG: "/x.json", IOTAGENT_ZZZ: "1", PATH: "/bin" },
  });
  assertEquals(warnings, [
    "unknown environment variable IOTAGENT_MQTT_VERIFYY ignored (did you mean IOTAGENT_MQTT_VERIFY?)",
    "unknown environment variable IOTAGENT_ZZZ ignored",
  ]);
});

Deno.test("an over-long value is cut in the message", () => {
  const value = "x".repeat(5000);
  const error = assertThrows(
    () => buildConfig({ env: { IOTAGENT_HEALTH_INTERVAL: value } }),
    ConfigError,
  ) as Error;
  assertMatch(error.message, /health\.interval="x{59}… \(5002 characters\) \(from env/);
  assertEquals(error.message.length < 300, true, error.message);
  const key = assertThrows(
    () => buildConfig({ file: { path: "f.json", content: { ["k".repeat(3000)]: 1 } } }),
    ConfigError,
  ) as Error;
  assertEquals(key.message.length < 200, true, key.message);
});

Deno.test("mqtt.brokers: host:port entries (IPv6 in brackets), each a valid address; proxies are http:// URLs", () => {
  assertEquals(
    buildConfig({
      env: { IOTAGENT_MQTT_BROKERS: " mqtt-2.example.com:8883, [2001:db8::1]:8883,10.0.0.7:1883 ," },
    })
      .config["mqtt.brokers"],
    ["mqtt-2.example.com:8883", "[2001:db8::1]:8883", "10.0.0.7:1883"],
  );
  assertEquals(buildConfig({ env: { IOTAGENT_MQTT_BROKERS: "" } }).config["mqtt.brokers"], undefined);
  for (
    const value of [
      "mqtt.example.com",
      "2001:db8::1:8883",
      "host:0",
      "host:65536",
      "bad host:8883",
      "a:1;b:2",
    ]
  ) {
    assertThrows(
      () => buildConfig({ env: { IOTAGENT_MQTT_BROKERS: value } }),
      ConfigError,
      "expected a comma-separated list of host:port",
    );
  }
  assertThrows(
    () => buildConfig({ env: { IOTAGENT_PROXY_HTTPS: "socks5://proxy:1080" } }),
    ConfigError,
    "expected an http:// proxy URL",
  );
  assertThrows(
    () => buildConfig({ env: { IOTAGENT_MQTT_FAILBACK_INTERVAL: "500ms" } }),
    ConfigError,
    "from 1s",
  );
});
