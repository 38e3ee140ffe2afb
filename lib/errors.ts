/**
 * What went wrong, decided in one place. The systems the agent talks to say what failed only in the text of their
 * errors (sqlite, the file system, Deno's HTTP client, rustls, nats.js, snapd, the identity service): every
 * reading of such a text is here, named for what it means, and tested against the texts those systems really
 * produce (tests/unit/errors_test.ts). The rest of the agent asks these questions and never matches a message,
 * so a wording changed upstream is one fix here. Typed errors the agent raises itself (`SnapdError`,
 * `ConfigError`, `ProxyError`, …) carry their cause instead.
 */

/** The message of anything thrown: an error's message, else the value as text. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  const message = (error as { message?: unknown } | null | undefined)?.message;
  return typeof message === "string" ? message : String(error);
}

/** Anything thrown, as an Error: itself when it is one, else an Error that carries it as its cause. */
export function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(errorMessage(error), { cause: error });
}

/** The messages of an error and of the causes it carries, joined: low-level clients put the reason in the cause. */
function fullText(error: unknown): string {
  const texts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && current !== null && depth < 5; depth++) {
    texts.push(errorMessage(current));
    current = (current as { cause?: unknown }).cause;
  }
  return texts.join(": ");
}

// storage

/** sqlite or the file system says there is no space left. */
export function isStorageFull(error: unknown): boolean {
  return /database or disk is full|no space left on device|ENOSPC|SQLITE_FULL/i.test(fullText(error));
}

/** sqlite says the file is damaged or not a database at all (as opposed to busy, full or forbidden). */
export function isDatabaseCorrupt(error: unknown): boolean {
  return /integrity check failed|not a database|malformed|corrupt|schema version .* is newer/i.test(
    fullText(error),
  );
}

// HTTP over a socket

/**
 * Deno's HTTP client could not open the connection (socket missing, refused, busy): the request was never sent,
 * so sending it again cannot do anything twice.
 */
export function isConnectFailure(error: unknown): boolean {
  return /client error \(Connect\)/.test(fullText(error));
}

// TLS

/** The alert a TLS peer sent to refuse this side's certificate (`CertificateExpired`, `UnknownCA`, …), if any. */
export function tlsAlert(error: unknown): string | undefined {
  return /fatal alert: (\w+)/i.exec(fullText(error))?.[1];
}

/** Node's (and mqtt.js's) codes for a peer certificate that could not be verified. */
const VERIFY_CODES = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

/** TLS could not verify the peer's certificate (untrusted issuer, wrong name, expired, self-signed). */
export function isPeerCertificateUnverified(error: unknown): boolean {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  if (typeof code === "string" && VERIFY_CODES.has(code)) return true;
  return /invalid peer certificate|UnknownIssuer|NotValidForName|certificate (has )?expired|self[- ]signed/i
    .test(fullText(error));
}

// NATS

/** A NATS server refused the user name and password (`Authorization Violation`). */
export function isAuthorizationRefused(error: unknown): boolean {
  return /authorization/i.test(fullText(error));
}

/** A NATS connection failed on TLS: the server's certificate was not trusted or the handshake failed. */
export function isTlsFailure(error: unknown): boolean {
  return isPeerCertificateUnverified(error) || /certificate|verify|tls/i.test(fullText(error));
}

// snapd and the identity service

/**
 * snapd's text for another change in progress on a snap, which `POST /v2/apps` answers as a 400 without an error
 * kind (`snap "x" has "service-control" change in progress`).
 */
export function saysChangeInProgress(message: string): boolean {
  return /^snap "[^"]+" has "[^"]+" change in progress$/.test(message);
}

/** The identity service refused to enroll the device because it already is enrolled. */
export function saysAlreadyEnrolled(message: string): boolean {
  return /already enrolled/i.test(message);
}
