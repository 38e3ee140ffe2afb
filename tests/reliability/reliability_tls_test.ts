/**
 * The TLS matrix: every way a TLS setup goes wrong in the field is refused with its own message that says what
 * to do — never a crash, never a silent retry loop. The broker's certificate from another CA, expired, not yet
 * valid, naming another host, self-signed; the device's own certificate expired or revoked by the broker; NATS
 * behind TLS with the wrong CA.
 */
import { join } from "node:path";
import { DEFAULT_NATS_PASSWORD } from "../../lib/settings.ts";
import { assertEquals, assertIncludes } from "../support/assert.ts";
import { goSecret } from "../support/go_files.ts";
import { Mosquitto } from "../support/mosquitto.ts";
import { NatsServer } from "../support/nats_server.ts";
import { type Issued, TestCA } from "../support/pki.ts";
import { trial } from "../support/reliability.ts";
import type { Child } from "../support/child.ts";
import { sleep } from "../support/wait.ts";
import { E2E, withWorld, type World, type WorldOptions } from "../support/world.ts";

const DAY = 86_400_000;
const DEVICE_ID = "2F0tTlsMatrixDevice000000000";

/**
 * Runs one TLS fault as a trial: `attempt` returns the refusal line it saw (or throws); the try is recovered when
 * every expected part is in that line and the agent neither connected nor crashed, lost when it connected anyway
 * (a certificate it must refuse) or crashed. Counted before the assertions, recorded whatever happens.
 */
async function tlsTrial(
  fault: string,
  expect: string[],
  attempt: (world: World) => Promise<{ line: string; agent: Child }>,
  options: WorldOptions = {},
): Promise<void> {
  let seen = "(no refusal line)";
  await trial(
    { area: "tls", fault, note: () => `refused, retried with backoff: "${seen}…"` },
    1,
    async (_i, counts) => {
      await withWorld(async (world) => {
        const { line, agent } = await attempt(world);
        seen = line.slice(line.indexOf("failed: ") + 8, line.indexOf("failed: ") + 120);
        await sleep(300);
        const connected = agent.matching(/connected to broker/).length > 0;
        const crashed = agent.matching(/^error|Uncaught|panicked/i).length > 0;
        if (connected || crashed) counts.lost++;
        else if (expect.every((part) => line.includes(part))) counts.recovered++;
        for (const part of expect) assertIncludes(line, part);
        assertEquals(connected, false, "refused, not connected");
        assertEquals(crashed, false, "no crash");
      }, options);
    },
  );
}

/** Runs an agent against a broker whose device listener presents `server`; its refusal must say `expect`. */
function refusedBy(server: (ca: TestCA) => Issued, expect: string[], fault: string): Promise<void> {
  return tlsTrial(fault, expect, async (world) => {
    const agent = world.agent();
    const line = await agent.waitForLine(/connecting to broker .* failed: /, { timeoutMs: 20_000 });
    await agent.waitForLine(/connecting to broker .* failed again/);
    return { line, agent };
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

/** An agent with a stored enrollment whose client certificate is `client`, against the world's broker. */
async function withClient(world: World, client: Issued): Promise<{ line: string; agent: Child }> {
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
  return { line, agent };
}

Deno.test({
  name: "TLS: the device's own certificate expired: the broker's refusal is explained, with what to do",
  ...E2E,
  fn: () =>
    tlsTrial(
      "the device's certificate expired",
      ["the broker refused this device's certificate: it expired on", "the device must be enrolled again"],
      (world) =>
        withClient(
          world,
          world.ca.issue("old-device", {
            notBefore: new Date(Date.now() - 400 * DAY),
            notAfter: new Date(Date.now() - DAY),
          }),
        ),
    ),
});

Deno.test({
  name: "TLS: the device's certificate revoked by the broker (CRL) says so",
  ...E2E,
  async fn() {
    const revoked = { cert: undefined as Issued | undefined };
    await tlsTrial(
      "the device's certificate revoked (broker CRL)",
      ["the broker refused this device's certificate: it was revoked"],
      (world) => withClient(world, revoked.cert!),
      {
        startBroker: async (ca) => {
          revoked.cert = ca.issue("revoked-device");
          return await Mosquitto.start({ ca, crl: await ca.crl([revoked.cert]) });
        },
      },
    );
  },
});

Deno.test({
  name:
    "TLS: NATS behind TLS with a CA the agent was not given: refused clearly, retried, the DMS link unaffected",
  ...E2E,
  async fn() {
    const fault = {
      area: "tls",
      fault: "NATS TLS with a wrong CA",
      note: "recovered: refused naming nats.ca while the DMS link answered; lost: a DMS action unanswered",
    };
    await trial(fault, 1, async (_i, counts) => {
      await withWorld(async (world) => {
        const dir = await Deno.makeTempDir();
        const server = world.ca.issue("localhost", { dns: ["localhost"], ips: ["127.0.0.1"] });
        await Deno.writeTextFile(`${dir}/server.crt`, server.certPem);
        await Deno.writeTextFile(`${dir}/server.key`, server.keyPem, { mode: 0o600 });
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
          const answered = (await world.dms.request(deviceId, { action: "device" })).success === true;
          if (!answered) counts.lost++;
          else if (line.includes("nats.ca")) counts.recovered++;
          assertIncludes(line, "nats.ca");
          assertEquals(answered, true);
        } finally {
          await nats.stop();
          await Deno.remove(dir, { recursive: true });
        }
      });
    });
  },
});
