import { systemClock } from "../../../lib/clock.ts";
import { X509Certificate } from "node:crypto";
import { join } from "node:path";
import { assertEquals, assertIncludes, assertMatch, assertOk } from "../../support/assert.ts";
import { requestEnrollment } from "../../../lib/adapters/identity_http.ts";
import { Enroller } from "../../../lib/identity/enroller.ts";
import { CredentialsStore } from "../../../lib/identity/credentials.ts";
import { ParamsFile } from "../../../lib/identity/params.ts";
import type { Enrollment } from "../../../lib/identity/enrollment.ts";
import { createLogger, MemorySink } from "../../../lib/log.ts";
import { resolvePaths } from "../../../lib/paths.ts";
import { assertionFixture } from "../../support/fixtures.ts";
import { FakeSnapd } from "../../support/fake_snapd.ts";
import { IdentityStub } from "../../support/identity_stub.ts";
import { TestCA } from "../../support/pki.ts";
import { goParams, goSecret } from "../../support/go_files.ts";
import { FIXTURE_DEVICE } from "../../support/world.ts";
import { openSnapd } from "../../../lib/adapters/snapd_http.ts";

const ca = TestCA.create();

interface Env {
  stub: IdentityStub;
  snapd: FakeSnapd;
  logs: MemorySink;
  dataDir: string;
  commonDir: string;
  /** Starts enrolling in the background. */
  enroll(): Promise<Enrollment>;
  /** Files in the data and common directories. */
  files(): string[];
  /** Waits until the stub has seen `count` enroll requests in total. */
  attempts(count: number): Promise<void>;
}

async function withEnv(fn: (env: Env) => Promise<void>, options: { configure?: boolean } = {}) {
  const dir = await Deno.makeTempDir();
  const dataDir = join(dir, "data");
  const commonDir = join(dir, "common");
  await Deno.mkdir(dataDir);
  await Deno.mkdir(commonDir);
  const paths = resolvePaths({ SNAP_DATA: dataDir, SNAP_COMMON: commonDir }, false);
  const stub = IdentityStub.start({ ca, mqttHost: "localhost", mqttPort: 8883 });
  const snapd = FakeSnapd.start();
  const client = openSnapd({ clock: systemClock, socketPath: snapd.socketPath, timeoutMs: 2000 });
  const logs = new MemorySink();
  const log = createLogger("test", { level: "debug", sink: logs });
  const stop = new AbortController();
  if (options.configure ?? true) {
    await Deno.writeTextFile(paths.params, goParams(stub.url, paths.credentials));
  }
  const enroller = new Enroller({
    clock: systemClock,
    snapd: client,
    params: new ParamsFile(paths, log),
    credentials: new CredentialsStore(paths, log),
    log,
    backoff: { initialMs: 5, maxMs: 20 },
    paramsPollMs: 10,
    setUrlHint: "agent configure --url URL",
    request: requestEnrollment,
  });
  const env: Env = {
    stub,
    snapd,
    logs,
    dataDir,
    commonDir,
    enroll: () => enroller.ensureEnrolled(stop.signal),
    files: () =>
      [
        ...[...Deno.readDirSync(dataDir)].map((e) => `data/${e.name}`),
        ...[...Deno.readDirSync(commonDir)].map((e) => `common/${e.name}`),
      ].sort(),
    async attempts(count: number) {
      const deadline = Date.now() + 10_000;
      while (stub.requests.length < count) {
        if (Date.now() > deadline) throw new Error(`only ${stub.requests.length} enroll requests`);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    },
  };
  try {
    await fn(env);
  } finally {
    stop.abort();
    client.close();
    await stub.stop();
    await snapd.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("enrollment: posts model + serial, stores .secret (0600, Go format) and device-data.bin", async () => {
  await withEnv(async ({ stub, snapd: _snapd, enroll, dataDir, commonDir, files }) => {
    stub.register({ ...FIXTURE_DEVICE, deviceData: btoa("Hello base 64 world") });
    const enrollment = await enroll();
    assertEquals(stub.requests.length, 1);
    assertEquals(stub.requests[0].contentType, "application/x.ubuntu.assertion");
    assertEquals(stub.requests[0].body, assertionFixture("enroll-PEER0001.body"));
    assertEquals(enrollment.id, stub.enrolledIds[0]);
    assertEquals(files(), ["common/device-data.bin", "data/.secret", "data/params"]);
    const secretPath = join(dataDir, ".secret");
    assertEquals((await Deno.stat(secretPath)).mode! & 0o777, 0o600);
    assertEquals((await Deno.stat(join(commonDir, "device-data.bin"))).mode! & 0o777, 0o600);
    assertEquals(await Deno.readTextFile(join(commonDir, "device-data.bin")), "Hello base 64 world");
    const stored = JSON.parse(await Deno.readTextFile(secretPath));
    assertEquals(Object.keys(stored), [
      "id",
      "device",
      "credentials",
      "organization",
      "status",
      "deviceData",
    ]);
    assertEquals(
      Object.keys(stored.organization),
      ["id", "name", "rootcert"],
      'the organisation key ("-") is not kept',
    );
    const certificate = new X509Certificate(enrollment.credentials.certificate);
    assertEquals(
      certificate.subject.includes(`CN=${stub.issuedNames[0]}`),
      true,
      "a real certificate from the CA",
    );
    assertOk(certificate.checkIssued(new X509Certificate(ca.certPem)));
    assertOk(stub.issuedNames[0] !== enrollment.id, "the CN is another id than the device id");
  });
});

/** The shared shape of the failure tests: fail, observe retries and no state, fix, succeed. */
async function failsThenRecovers(
  env: Env,
  options: { attempts: number; cause: RegExp; fix: () => void | Promise<void> },
) {
  const pending = env.enroll();
  await env.attempts(options.attempts);
  assertEquals(env.files(), ["data/params"], "nothing written while failing");
  await options.fix();
  const enrollment = await pending;
  assertEquals(env.files(), ["data/.secret", "data/params"]);
  const warnings = env.logs.records({ level: "warn", message: /^enrollment failed/ });
  assertEquals(warnings.length, 1, `one warning for one cause, got:\n${env.logs.lines.join("\n")}`);
  assertMatch(warnings[0].message, options.cause);
  const repeats = env.logs.records({ level: "debug", message: /^enrollment failed again/ });
  assertOk(repeats.length >= 1, "repeats are logged at debug only");
  assertEquals(repeats.map((r) => r.fields.attempt), repeats.map((_, i) => i + 2), "each repeat counted");
  assertMatch(
    env.logs.records({ level: "info", message: /^enrollment succeeded after/ })[0].message,
    /succeeded after \d+ failed attempt/,
  );
  return enrollment;
}

for (
  const [name, cause, setup, fix] of [
    [
      "device not registered",
      /\(EnrollDevice\) error retrieving device: sql: no rows in result set/,
      () => {},
      (env: Env) => env.stub.register(FIXTURE_DEVICE),
    ],
    [
      "device already enrolled",
      /^enrollment failed: the identity service holds an enrollment this device lost \(.*\(EnrollDevice\) the device `peerbrand\/peer-model\/PEER0001` is already enrolled\): an operator must reset the device's registration on the identity service \(back to waiting\); the agent then enrolls by itself$/,
      (env: Env) => env.stub.register({ ...FIXTURE_DEVICE, status: 2 }),
      (env: Env) => env.stub.register(FIXTURE_DEVICE),
    ],
    [
      "registration disabled",
      /\(EnrollDevice\) the device registration for `peerbrand\/peer-model\/PEER0001` is disabled/,
      (env: Env) => env.stub.register({ ...FIXTURE_DEVICE, status: 3 }),
      (env: Env) => env.stub.register(FIXTURE_DEVICE),
    ],
    [
      "malformed body (serial of another model)",
      /\(EnrollDevice\) model and serial assertions do not match/,
      (env: Env) => {
        env.stub.register(FIXTURE_DEVICE);
        const serial = assertionFixture("serial-PEER0001.assert").replace(
          "model: peer-model",
          "model: other-model",
        );
        env.snapd.assertions.set("serial", serial);
      },
      (env: Env) => void env.snapd.assertions.set("serial", assertionFixture("serial-PEER0001.assert")),
    ],
  ] as const
) {
  Deno.test(`enrollment failure is retried and writes nothing: ${name}`, async () => {
    await withEnv(async (env) => {
      setup(env);
      await failsThenRecovers(env, { attempts: 3, cause: cause, fix: () => fix(env) });
    });
  });
}

Deno.test("enrollment failure is retried and writes nothing: a body that is not JSON", async () => {
  await withEnv(async (env) => {
    env.stub.register(FIXTURE_DEVICE);
    for (let i = 0; i < 1000; i++) env.stub.injectFault("html-502");
    await failsThenRecovers(env, {
      attempts: 3,
      cause: /answered HTTP 502 with a body that is not JSON: "<html>/,
      fix: () => env.stub.clearFaults(),
    });
  });
});

Deno.test("enrollment failure is retried and writes nothing: identity service unreachable", async () => {
  await withEnv(async (env) => {
    env.stub.register(FIXTURE_DEVICE);
    await env.stub.stop();
    const pending = env.enroll();
    const deadline = Date.now() + 5000;
    while (env.logs.records({ message: /^enrollment failed again/ }).length < 2 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assertEquals(env.files(), ["data/params"]);
    env.stub.listen();
    await pending;
    const warnings = env.logs.records({ level: "warn", message: /^enrollment failed/ });
    assertEquals(warnings.length, 1);
    assertMatch(
      warnings[0].message,
      /cannot reach the identity service at http:\/\/127\.0\.0\.1:\d+\/v1\/device\/enroll/,
    );
  });
});

Deno.test("enrollment: an empty 200 enrollment is not stored (it would never connect)", async () => {
  await withEnv(async (env) => {
    env.stub.register(FIXTURE_DEVICE);
    env.stub.injectFault("empty-enrollment");
    env.stub.injectFault("empty-enrollment");
    await env.enroll();
    assertEquals(env.stub.requests.length, 3);
    assertMatch(
      env.logs.records({ level: "warn", message: /^enrollment failed/ })[0].message,
      /without usable credentials: enrollment\.id is missing/,
    );
  });
});

Deno.test("no serial assertion yet: nothing is posted, it is retried until snapd has one", async () => {
  await withEnv(async (env) => {
    env.stub.register(FIXTURE_DEVICE);
    env.snapd.assertions.set("serial", undefined);
    const pending = env.enroll();
    const deadline = Date.now() + 5000;
    while (env.snapd.requestsTo("GET", "/v2/assertions/serial").length < 3 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assertEquals(env.stub.requests.length, 0, "no empty body is posted");
    assertEquals(env.files(), ["data/params"]);
    env.snapd.assertions.set("serial", assertionFixture("serial-PEER0001.assert"));
    await pending;
    assertEquals(env.stub.requests.length, 1);
    assertEquals(env.logs.records({ level: "warn", message: /no serial assertion yet/ }).length, 1);
  });
});

Deno.test("a .secret written by the Go agent is used without calling the identity service", async () => {
  await withEnv(async (env) => {
    const client = ca.issue("device-cn");
    const organization = ca.issue("Example Inc", { isCA: true });
    const secret = goSecret({
      id: "1tQGoAgent000000000000000000",
      client,
      organization,
      mqttUrl: "mqtt.example.com",
      mqttPort: "8883",
    });
    await Deno.writeTextFile(join(env.dataDir, ".secret"), secret, { mode: 0o600 });
    const enrollment = await env.enroll();
    assertEquals(enrollment.id, "1tQGoAgent000000000000000000");
    assertEquals(env.stub.requests.length, 0);
    assertEquals(env.snapd.requests.length, 0);
    assertEquals(
      await Deno.readTextFile(join(env.dataDir, ".secret")),
      secret,
      "the Go file is left as it is",
    );
    assertEquals(await Deno.readTextFile(join(env.commonDir, "device-data.bin")), "Hello base 64 world");
  });
});

Deno.test("a crash between .secret and device-data.bin is repaired from .secret at the next start", async () => {
  await withEnv(async (env) => {
    env.stub.register({ ...FIXTURE_DEVICE, deviceData: btoa("payload") });
    await env.enroll();
    await Deno.remove(join(env.commonDir, "device-data.bin"));
    await env.enroll();
    assertEquals(await Deno.readTextFile(join(env.commonDir, "device-data.bin")), "payload");
    assertEquals(env.stub.requests.length, 1);
  });
});

Deno.test("a corrupt .secret is moved aside and reported, then enrollment is attempted", async () => {
  await withEnv(async (env) => {
    env.stub.register(FIXTURE_DEVICE);
    await Deno.writeTextFile(join(env.dataDir, ".secret"), '{"id": "trunc');
    await env.enroll();
    assertEquals(env.files().filter((f) => f.startsWith("data/.secret.corrupt-")).length, 1);
    assertIncludes(env.logs.records({ level: "error" })[0].message, ".secret is corrupt");
  });
});

Deno.test("not configured: waits for params, enrolls once the URL is set", async () => {
  await withEnv(async (env) => {
    env.stub.register(FIXTURE_DEVICE);
    const pending = env.enroll();
    await new Promise((resolve) => setTimeout(resolve, 100));
    assertEquals(env.stub.requests.length, 0);
    assertEquals(
      env.logs.records({ message: /waiting for the identity service URL/ }).length,
      1,
      "said once",
    );
    await Deno.writeTextFile(
      join(env.dataDir, "params"),
      goParams(env.stub.url, join(env.dataDir, ".secret")),
    );
    await pending;
    assertEquals(env.stub.requests.length, 1);
  }, { configure: false });
});

Deno.test("a corrupt params is moved aside; the agent then waits for a URL", async () => {
  await withEnv(async (env) => {
    await Deno.writeTextFile(join(env.dataDir, "params"), "{url:");
    const pending = env.enroll();
    await new Promise((resolve) => setTimeout(resolve, 100));
    assertEquals(env.files().filter((f) => f.startsWith("data/params.corrupt-")).length, 1);
    assertEquals(env.logs.records({ message: /waiting for the identity service URL/ }).length, 1);
    env.stub.register(FIXTURE_DEVICE);
    await Deno.writeTextFile(join(env.dataDir, "params"), goParams(env.stub.url, ""));
    await pending;
  }, { configure: false });
});
