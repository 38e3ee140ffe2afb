/**
 * The captured snapd exchanges (`tests/fixtures/snapd/*.http`, real snapd 2.57.6 responses) and the signed test
 * assertions (`tests/fixtures/assertions/`), loaded for fakes and tests.
 */

/** One captured exchange. */
export interface HttpFixture {
  file: string;
  request: { method: string; path: string; body: string };
  status: number;
  statusText: string;
  headers: Headers;
  body: Uint8Array;
}

const SNAPD_DIR = new URL("../fixtures/snapd/", import.meta.url);
const ASSERTIONS_DIR = new URL("../fixtures/assertions/", import.meta.url);

/** Loads a snapd fixture by its number prefix (`"11"`) or file name. */
export function snapdFixture(name: string): HttpFixture {
  const file = [...Deno.readDirSync(SNAPD_DIR)].map((e) => e.name).find((n) =>
    n === name || n.startsWith(`${name}-`)
  );
  if (!file) throw new Error(`no snapd fixture ${name}`);
  return parseHttpFixture(file, Deno.readFileSync(new URL(file, SNAPD_DIR)));
}

/** The `result` of a JSON fixture's envelope. */
export function fixtureResult<T = unknown>(name: string): T {
  return fixtureJson<{ result: T }>(name).result;
}

/** A JSON fixture's whole body. */
export function fixtureJson<T = unknown>(name: string): T {
  return JSON.parse(new TextDecoder().decode(snapdFixture(name).body));
}

/** A file of `tests/fixtures/assertions/` as text. */
export function assertionFixture(name: string): string {
  return Deno.readTextFileSync(new URL(name, ASSERTIONS_DIR));
}

/** Parses the fixture format: three `#` lines, then the HTTP response as received (CRLF headers, maybe chunked). */
export function parseHttpFixture(file: string, bytes: Uint8Array): HttpFixture {
  const text = new TextDecoder("latin1").decode(bytes);
  const lines = text.split("\n", 3);
  const [method, path] = lines[0].replace(/^# request: /, "").split(" ");
  const body = lines[1].replace(/^# body: ?/, "");
  const httpStart = text.indexOf("HTTP/1.1");
  const headerEnd = text.indexOf("\r\n\r\n", httpStart);
  const head = text.slice(httpStart, headerEnd).split("\r\n");
  const [, status, ...reason] = head[0].split(" ");
  const headers = new Headers();
  for (const line of head.slice(1)) {
    const colon = line.indexOf(":");
    headers.append(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  let payload = bytes.subarray(headerEnd + 4);
  if (headers.get("Transfer-Encoding") === "chunked") payload = dechunk(payload);
  return {
    file,
    request: { method, path, body },
    status: Number(status),
    statusText: reason.join(" "),
    headers,
    body: payload,
  };
}

function dechunk(bytes: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [];
  let pos = 0;
  for (;;) {
    let lineEnd = pos;
    while (!(bytes[lineEnd] === 0x0d && bytes[lineEnd + 1] === 0x0a)) lineEnd++;
    const size = parseInt(new TextDecoder().decode(bytes.subarray(pos, lineEnd)), 16);
    if (!size) break;
    parts.push(bytes.subarray(lineEnd + 2, lineEnd + 2 + size));
    pos = lineEnd + 2 + size + 2;
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
