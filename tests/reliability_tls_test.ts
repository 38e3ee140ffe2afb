/**
 * The TLS matrix: every way a TLS setup goes wrong in the field is refused with its own message that says what
 * to do — never a crash, never a silent retry loop. The broker's certificate from another CA, expired, not yet
 * valid, naming another host, self-signed; the device's own certificate expired or revoked by the broker; NATS
 * behind TLS with the wrong CA.
 */
import { join } from "node:path";
import { DEFAULT_NATS_PASSWORD } from "../lib/settings.ts";
import { assertEquals, assertIncludes } from "./support/assert.ts";
import { goSecret } from "./support/go_files.ts";
import { Mosquitto } from "./support/mosquitto.ts";
import { NatsServer } from "./support/nats_server.ts";
import { type Issued, TestCA } from "./support/pki.ts";
import { record } from "./support/reliability.ts";
import { sleep } from "./support/wait.ts";
import { E2E, withWorld, type World } from "./support/world.ts";

const DAY = 86_400_000;
const DEVICE_ID = "2F0tTlsMatrixDevice000000000";

/** Records a TLS fault that was refused with its own message and retried (no crash, nothing lost). */
function refused(fault: string, note: string): Promise<void> {
  return record({
    area: "tls",
    fault,
    tries: 1,
    lost: 0,
    repeatedEffects: 0,
    repeatedReplies: 0,
    recovered: 1,
    note,
  });
}

/** Runs an agent against a broker whose device listener presents `server`; returns its refusal line. */
async function refusedBy(server: (ca: TestCA) => Issued, expect: string[], fault: string): Promise<void> {
  await withWorld(async (world) => {
    const agent = world.agent();
    const line = await agent.waitForLine(/connecting to broker .* failed: /, { timeoutMs: 20_000 });
    for (const part of expect) assertIncludes(line, part);
    await agent.waitForLine(/connecting to broker .* failed again/);
    assertEquals(agent.matching(/connected to broker/).length, 0);
    await sleep(300);
    assertEquals(agent.matching(/^error|Uncaught|panicked/i).length, 0, "no crash");
    await refused(
      fault,
      `refused, retried with backoff: "${
        line.slice(line.indexOf("failed: ") + 8, line.indexOf("failed: ") + 120)
      }…"`,
    );
  }, {
    startBroker: (ca) => Mosquitto.start({ ca, device: { address: "127.0.0.1", server: server(ca) } }),
  });
}

Deno.test({
  name:
    "TLS: a broker certificate from a CA the device does not trust names that CA and mqtt.ca / mqtt.verify",
  ...E2E,
  fn: () =>
    refusedBy(
      () => TestCA.create("Some Other CA").issue("localhost", { dns: ["localhost"] }),
      ['is signed by "Some Other CA", which this device does not trust', "set mqtt.ca", "mqtt.verify=false"],
      "broker certificate from another CA",
    ),
});

Deno.test({
  name: "TLS: an expired broker certificate says when it expired and who must renew it",
  ...E2E,
  fn: () =>
    refusedBy(
      (ca) =>
        ca.issue("localhost", {
          dns: ["localhost"],
          notBefore: new Date(Date.now() - 30 * DAY),
          notAfter: new Date(Date.now() - DAY),
        }),
      ["expired on", "The broker's operator must renew it", "this device's clock says"],
      "broker certificate expired",
    ),
});

Deno.test({
  name: "TLS: a broker certificate not yet valid points at this device's clock",
  ...E2E,
  fn: () =>
    refusedBy(
      (ca) =>
        ca.issue("localhost", {
          dns: ["localhost"],
          notBefore: new Date(Date.now() + DAY),
          notAfter: new Date(Date.now() + 30 * DAY),
        }),
      ["is not valid before", "set the clock (NTP"],
      "broker certificate not yet valid",
    ),
});

Deno.test({
  name: "TLS: a self-signed broker certificate is named as such",
  ...E2E,
  fn: () =>
    refusedBy(
      () => TestCA.selfSigned("localhost", { dns: ["localhost"] }),
      ["presents a self-signed certificate", "set mqtt.ca to the PEM bundle of it"],
      "broker certificate self-signed",
    ),
});

Deno.test({
  name: "TLS: a broker certificate for another host names both names",
  ...E2E,
  fn: () =>
    refusedBy(
      (ca) => ca.issue("elsewhere", { dns: ["mqtt.elsewhere.example"] }),
      ["the certificate names DNS:mqtt.elsewhere.example, not host name localhost"],
      "broker certificate for another host",
    ),
});

/** An agent with a stored enrollment whose client certificate is `client`, against `broker`. */
async function withClient(world: World, client: Issued): Promise<string> {
  await Deno.writeTextFile(
    join(world.dataDir, ".secret"),
    goSecret({
      id: DEVICE_ID,
      client,
      organization: world.ca.issue("Example Inc", { isCA: true }),
      mqttUrl: "localhost",
      mqttPort: String(world.broker.port),
    }),
    { mode: 0o600 },
  );
  const agent = world.agent();
  const line = await agent.waitForLine(/connecting to broker .* failed: /, { timeoutMs: 20_000 });
  await agent.waitForLine(/connecting to broker .* failed again/);
  assertEquals(agent.matching(/connected to broker/).length, 0);
  return line;
}

Deno.test({
  name: "TLS: the device's own certificate expired: the broker's refusal is explained, with what to do",
  ...E2E,
  async fn() {
    await withWorld(async (world) => {
      const line = await withClient(
        world,
        world.ca.issue("old-device", {
          notBefore: new Date(Date.now() - 400 * DAY),
          notAfter: new Date(Date.now() - DAY),
        }),
      );
      assertIncludes(line, "the broker refused this device's certificate: it expired on");
      assertIncludes(line, "the device must be enrolled again");
      await refused("the device's certificate expired", "refused: it expired on …; enroll again");
    });
  },
});

Deno.test({
  name: "TLS: the device's certificate revoked by the broker (CRL) says so",
  ...E2E,
  async fn() {
    const revoked = { cert: undefined as Issued | undefined };
    await withWorld(async (world) => {
      const line = await withClient(world, revoked.cert!);
      assertIncludes(line, "the broker refused this device's certificate: it was revoked");
      await refused("the device's certificate revoked (broker CRL)", "refused: it was revoked; enroll again");
    }, {
      startBroker: async (ca) => {
        revoked.cert = ca.issue("revoked-device");
        return await Mosquitto.start({ ca, crl: await ca.crl([revoked.cert]) });
      },
    });
  },
});

Deno.test({
  name:
    "TLS: NATS behind TLS with a CA the agent was not given: refused clearly, retried, the DMS link unaffected",
  ...E2E,
  async fn() {
    await withWorld(async (world) => {
      const dir = await Deno.makeTempDir();
      const server = world.ca.issue("localhost", { dns: ["localhost"], ips: ["127.0.0.1"] });
      await Deno.writeTextFile(`${dir}/server.crt`, server.certPem);
      await Deno.writeTextFile(`${dir}/server.key`, server.keyPem);
      await Deno.writeTextFile(`${dir}/wrong-ca.pem`, TestCA.create("Wrong CA").certPem);
      const nats = await NatsServer.start({
        users: [{ user: "snapd", password: DEFAULT_NATS_PASSWORD }],
        extra: `tls {\n  cert_file: "${dir}/server.crt"\n  key_file: "${dir}/server.key"\n}\n`,
      });
      try {
        const agent = world.agent([], {
          IOTAGENT_NATS_ENABLED: "true",
          IOTAGENT_NATS_URL: `tls://127.0.0.1:${nats.port}`,
          IOTAGENT_NATS_CA: `${dir}/wrong-ca.pem`,
        });
        const deviceId = await world.online();
        const line = await agent.waitForLine(/connecting to NATS .* failed: /);
        assertIncludes(line, "nats.ca");
        assertEquals((await world.dms.request(deviceId, { action: "device" })).success, true);
        await refused("NATS TLS with a wrong CA", "refused, naming nats.ca; the DMS link unaffected");
      } finally {
        await nats.stop();
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
});
