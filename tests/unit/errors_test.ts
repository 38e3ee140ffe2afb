import { assertEquals, assertOk } from "../support/assert.ts";
import {
  asError,
  errorMessage,
  isAuthorizationRefused,
  isConnectFailure,
  isDatabaseCorrupt,
  isPeerCertificateUnverified,
  isStorageFull,
  isTlsFailure,
  saysAlreadyEnrolled,
  saysChangeInProgress,
  tlsAlert,
} from "../../lib/errors.ts";

// The texts below are what the systems say (node:sqlite, Deno's file system and HTTP client, rustls, nats.js,
// snapd's fixtures in tests/fixtures/snapd, the identity service); each question must also say no to the texts
// of the failures it must not be confused with.

Deno.test("errorMessage and asError take anything thrown, and keep what was thrown as the cause", () => {
  assertEquals(errorMessage(new TypeError("bad")), "bad");
  assertEquals(errorMessage("plain text"), "plain text");
  assertEquals(errorMessage({ message: "an error-like object" }), "an error-like object");
  assertEquals(errorMessage(undefined), "undefined");
  const original = new RangeError("kept");
  assertOk(asError(original) === original, "an Error is itself");
  const wrapped = asError(42);
  assertEquals(wrapped.message, "42");
  assertEquals(wrapped.cause, 42);
});

Deno.test("storage: full is told apart from busy, forbidden and damaged", () => {
  assertOk(isStorageFull(new Error("database or disk is full")));
  assertOk(isStorageFull(new Error("No space left on device (os error 28)")));
  assertOk(
    isStorageFull(new Error("cannot keep the reply", { cause: new Error("database or disk is full") })),
  );
  for (const other of ["database is locked", "Permission denied (os error 13)", "file is not a database"]) {
    assertOk(!isStorageFull(new Error(other)), other);
  }
  assertOk(isDatabaseCorrupt(new Error("file is not a database")));
  assertOk(isDatabaseCorrupt(new Error("database disk image is malformed")));
  assertOk(isDatabaseCorrupt(new Error("integrity check failed: row 3 missing from index")));
  for (const other of ["database is locked", "database or disk is full", "unable to open database file"]) {
    assertOk(!isDatabaseCorrupt(new Error(other)), other);
  }
});

Deno.test("HTTP: a connection never opened is told apart from one that broke after the request was sent", () => {
  const refused = new TypeError("error sending request for url (http://localhost/v2/snaps)", {
    cause: new Error("client error (Connect): No such file or directory (os error 2)"),
  });
  assertOk(isConnectFailure(refused));
  const reset = new TypeError("error sending request for url (http://localhost/v2/snaps)", {
    cause: new Error("connection closed before message completed"),
  });
  assertOk(!isConnectFailure(reset));
});

Deno.test("TLS: the peer's refusal of our certificate, and our refusal of the peer's", () => {
  assertEquals(tlsAlert(new Error("received fatal alert: CertificateExpired")), "CertificateExpired");
  assertEquals(tlsAlert(new Error("invalid peer certificate: UnknownIssuer")), undefined);
  assertOk(isPeerCertificateUnverified(new Error("invalid peer certificate: UnknownIssuer")));
  assertOk(isPeerCertificateUnverified(Object.assign(new Error("x"), { code: "CERT_HAS_EXPIRED" })));
  assertOk(!isPeerCertificateUnverified(new Error("received fatal alert: CertificateExpired")));
  assertOk(!isPeerCertificateUnverified(new Error("Connection refused (os error 111)")));
});

Deno.test("NATS: a refused password and an untrusted server are told apart from an unreachable one", () => {
  assertOk(isAuthorizationRefused(new Error("'Authorization Violation'")));
  assertOk(!isAuthorizationRefused(new Error("invalid peer certificate: UnknownIssuer")));
  assertOk(isTlsFailure(new Error("invalid peer certificate: UnknownIssuer")));
  assertOk(!isTlsFailure(new Error("'Authorization Violation'")));
  for (const unreachable of ["Connection refused (os error 111)", "CONNECTION_REFUSED"]) {
    assertOk(
      !isAuthorizationRefused(new Error(unreachable)) && !isTlsFailure(new Error(unreachable)),
      unreachable,
    );
  }
});

Deno.test("snapd and the identity service: their refusals read from their own words", () => {
  // tests/fixtures/snapd/110-POST-v2-apps-restart-while-busy-400.http
  assertOk(saysChangeInProgress('snap "peer-svc" has "service-control" change in progress'));
  assertOk(!saysChangeInProgress('snap "peer-svc" is not installed'));
  assertOk(saysAlreadyEnrolled("the device `acme/mymodel/A100` is already enrolled"));
  assertOk(!saysAlreadyEnrolled("the device is not registered"));
});
