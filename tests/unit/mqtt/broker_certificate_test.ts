/**
 * The broker certificate diagnosis with an injected "now": a device that booted in 1970 is told to set its clock,
 * and the same certificate is fine once NTP has set it (tests/reliability/reliability_clock_test.ts does it with a real agent
 * and a real reconnect).
 */
import { X509Certificate } from "node:crypto";
import { diagnoseCertificate, explainClientCertificateAlert } from "../../../lib/mqtt/broker_certificate.ts";
import { assertEquals, assertIncludes } from "../../support/assert.ts";
import { TestCA } from "../../support/pki.ts";

const ca = TestCA.create("DMS CA");
const server = ca.issue("mqtt.example.com", { dns: ["mqtt.example.com"] });
const trust = { ca: [ca.certPem], verify: true, sources: ["mqtt.ca"] };
const certificate = new X509Certificate(server.certPem);

Deno.test("clock at 1970 (no RTC): the broker's certificate is 'not valid yet' and the line says to set the clock", () => {
  const at1970 = diagnoseCertificate(certificate, "mqtt.example.com:8883", trust, Date.UTC(1970, 0, 1, 0, 1));
  assertIncludes(at1970!, "is not valid before");
  assertIncludes(at1970!, "this device's clock says 1970-01-01: set the clock (NTP");
  assertEquals(
    diagnoseCertificate(certificate, "mqtt.example.com:8883", trust, Date.now()),
    undefined,
    "after NTP",
  );
  const decadesAhead = diagnoseCertificate(
    certificate,
    "mqtt.example.com:8883",
    trust,
    Date.now() + 50 * 365 * 86_400_000,
  );
  assertIncludes(decadesAhead!, "expired on");
});

Deno.test("the device's own certificate: a broker saying 'expired' while it is valid here points at the clocks", () => {
  const client = ca.issue("device");
  const line = explainClientCertificateAlert(
    new Error("received fatal alert: CertificateExpired"),
    client.certPem,
    Date.now(),
  );
  assertIncludes(line!, "by this device's clock");
  assertIncludes(line!, "check the clocks of the device and the broker");
});
