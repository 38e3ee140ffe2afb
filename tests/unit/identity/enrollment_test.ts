import { assertEquals, assertOk, assertThrows } from "../../support/assert.ts";
import { decodeEnrollment, encodeEnrollment } from "../../../lib/identity/enrollment.ts";
import { TestCA } from "../../support/pki.ts";
import { goSecret as goSecretFile } from "../../support/go_files.ts";

const ca = TestCA.create();
const client = ca.issue("2ABCDEFGHIJKLMNOPQRSTUVWXYZ");
const org = ca.issue("Example Inc", { isCA: true });

const parts = {
  id: "1tQjmwxZ3qfZrZ3m0r5z9kqUeYL",
  client,
  organization: org,
  mqttUrl: "mqtt.example.com",
  mqttPort: "8883",
};
const goSecret = (overrides: Record<string, unknown> = {}) => goSecretFile(parts, overrides);

Deno.test("a Go-written .secret decodes, the organisation key is tolerated", () => {
  const enrollment = decodeEnrollment(JSON.parse(goSecret()));
  assertEquals(enrollment.id, "1tQjmwxZ3qfZrZ3m0r5z9kqUeYL");
  assertEquals(enrollment.credentials.certificate, client.certPem);
  assertEquals(enrollment.credentials.privateKey, client.keyPem);
  assertEquals(enrollment.credentials.mqttPort, "8883");
  assertEquals(enrollment.organization.rootcert, org.certPem);
  assertEquals(enrollment.device.deviceKey, "AcbA\nQpe");
});

Deno.test("encoding keeps the Go key order and never writes the organisation private key", () => {
  const encoded = encodeEnrollment(decodeEnrollment(JSON.parse(goSecret())));
  assertEquals(encoded.includes('"-"'), false);
  assertEquals(encoded.includes(btoa(org.keyPem)), false);
  const expected = JSON.parse(goSecret());
  delete expected.organization["-"];
  assertEquals(encoded, JSON.stringify(expected));
  assertEquals(decodeEnrollment(JSON.parse(encoded)), decodeEnrollment(JSON.parse(goSecret())));
});

Deno.test("invalid enrollments are refused with the field named", () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ id: "" }, "enrollment.id is empty"],
    [{ id: "a/b" }, "enrollment.id is not usable"],
    [
      { credentials: { certificate: "", privateKey: "", mqttUrl: "h", mqttPort: "1" } },
      "enrollment.credentials.privateKey is empty",
    ],
    [{
      credentials: {
        certificate: btoa("junk"),
        privateKey: btoa(client.keyPem),
        mqttUrl: "h",
        mqttPort: "1",
      },
    }, "certificate does not hold the expected PEM block"],
    [{
      credentials: {
        certificate: btoa(client.certPem),
        privateKey: btoa(client.keyPem),
        mqttUrl: "h",
        mqttPort: "99999",
      },
    }, "mqttPort is not a TCP port"],
    [{ organization: {} }, "enrollment.organization.id is missing"],
    [{ status: "2" }, "enrollment.status is not a number"],
  ];
  for (const [overrides, message] of cases) {
    assertThrows(() => decodeEnrollment(JSON.parse(goSecret(overrides))), TypeError, message);
  }
  assertThrows(() => decodeEnrollment({}), TypeError, "enrollment.id is missing");
  assertOk(
    decodeEnrollment(
      JSON.parse(goSecret({ credentials: { ...JSON.parse(goSecret()).credentials, mqttPort: 8883 } })),
    ),
  );
});
