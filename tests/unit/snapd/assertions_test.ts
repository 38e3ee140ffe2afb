import { assertEquals, assertThrows } from "../../support/assert.ts";
import { parseAssertions } from "../../../lib/snapd/assertions.ts";
import { enrollBody, EnrollmentError } from "../../../lib/identity/enroll_request.ts";
import { assertionFixture, snapdFixture } from "../../support/fixtures.ts";

Deno.test("parses the signed serial assertion, multi-line device-key joined with newlines", () => {
  const [serial] = parseAssertions(assertionFixture("serial-PEER0001.assert"));
  assertEquals(serial.type, "serial");
  assertEquals(serial.headers["brand-id"], "peerbrand");
  assertEquals(serial.headers.serial, "PEER0001");
  const key = serial.headers["device-key"];
  assertEquals(key.split("\n").length, 5);
  assertEquals(
    key.startsWith("AcbATQRWhcGAAQgAwgPOm+kLLVoivvO52Mix/4vuwXz3eNms2H6maRvSSwvdz/nFEbh0cAX5MVVC\nNSpDSLd4"),
    true,
  );
  assertEquals(serial.text, assertionFixture("serial-PEER0001.assert"));
});

Deno.test("parses the six-assertion chain in order", () => {
  const chain = parseAssertions(assertionFixture("chain-PEER0001.assert"));
  assertEquals(chain.map((a) => a.type), [
    "account",
    "account-key",
    "account",
    "account-key",
    "model",
    "serial",
  ]);
  assertEquals(chain[4].text, assertionFixture("model.assert"));
  assertEquals(chain[5].text, assertionFixture("serial-PEER0001.assert"));
  // account-key assertions carry a body (the public key): body-length is honoured
  assertEquals(chain[1].body.length, Number(chain[1].headers["body-length"]));
});

Deno.test("parses snapd's model response (fixture 02) and its count-0 serial response (fixture 03)", () => {
  const model = parseAssertions(snapdFixture("02").body);
  assertEquals(model.length, 1);
  assertEquals(model[0].headers.model, "generic-classic");
  assertEquals(parseAssertions(snapdFixture("03").body), []);
});

Deno.test("the enroll body is byte for byte the captured one (model, newline, serial)", () => {
  const body = enrollBody(
    { count: 1, text: assertionFixture("model.assert") },
    { count: 1, text: assertionFixture("serial-PEER0001.assert") + "\n\n" },
  );
  assertEquals(body, assertionFixture("enroll-PEER0001.body"));
});

Deno.test("no serial assertion yet: no empty body is built", () => {
  const error = assertThrows(
    () => enrollBody({ count: 1, text: assertionFixture("model.assert") }, { count: 0, text: "" }),
    EnrollmentError,
    "no serial assertion yet",
  ) as EnrollmentError;
  assertEquals(error.reason, "no-assertions");
});

Deno.test("malformed assertion text is a SyntaxError", () => {
  for (
    const text of [
      "type: model\nno blank line",
      "no-colon-here\n\nsig",
      "key: v\n\nsig",
      "type: x\nbody-length: 5\n\nab",
    ]
  ) {
    assertThrows(() => parseAssertions(text), SyntaxError, undefined, text);
  }
});
