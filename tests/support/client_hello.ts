/**
 * A TCP listener that reads the first TLS ClientHello a client sends and reports its server name indication
 * (RFC 6066 §3), then closes the connection: what a TLS client puts on the wire, seen from outside it.
 */

import { within } from "./wait.ts";

/** What the client sent. */
export interface ClientHello {
  /** The SNI host name, or undefined when the extension is absent. */
  serverName: string | undefined;
}

/** Listens on `hostname`; `next()` resolves with the next connection's ClientHello. */
export class ClientHelloCatcher {
  readonly #listener: Deno.Listener;

  constructor(hostname: string) {
    this.#listener = Deno.listen({ hostname, port: 0 });
  }

  get port(): number {
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  /** Accepts one connection, reads its ClientHello, closes it; fails when none comes within `timeoutMs`. */
  async next(timeoutMs = 10_000): Promise<ClientHello> {
    const connection = await within(this.#listener.accept(), "a client to connect", timeoutMs);
    try {
      const bytes = await within(readRecord(connection), "the client's ClientHello", timeoutMs);
      return { serverName: serverName(bytes) };
    } finally {
      connection.close();
    }
  }

  close(): void {
    this.#listener.close();
  }
}

/** Reads one TLS record (5-byte header + body). */
async function readRecord(connection: Deno.Conn): Promise<Uint8Array> {
  const chunks: number[] = [];
  const buffer = new Uint8Array(4096);
  while (chunks.length < 5 || chunks.length < 5 + ((chunks[3] << 8) | chunks[4])) {
    const n = await connection.read(buffer);
    if (n === null) throw new Error("connection closed before a whole ClientHello");
    chunks.push(...buffer.subarray(0, n));
  }
  if (chunks[0] !== 22) throw new Error(`not a TLS handshake record (type ${chunks[0]})`);
  return new Uint8Array(chunks.slice(5, 5 + ((chunks[3] << 8) | chunks[4])));
}

/** The server_name extension of a ClientHello handshake message. */
function serverName(hello: Uint8Array): string | undefined {
  const u16 = (at: number) => (hello[at] << 8) | hello[at + 1];
  if (hello[0] !== 1) throw new Error(`not a ClientHello (handshake type ${hello[0]})`);
  let at = 4 + 2 + 32; // handshake header, client version, random
  at += 1 + hello[at]; // session id
  at += 2 + u16(at); // cipher suites
  at += 1 + hello[at]; // compression methods
  const end = at + 2 + u16(at);
  at += 2;
  while (at < end) {
    const type = u16(at);
    const length = u16(at + 2);
    if (type === 0) {
      const nameLength = u16(at + 4 + 2 + 1);
      return new TextDecoder().decode(hello.subarray(at + 4 + 2 + 1 + 2, at + 4 + 2 + 1 + 2 + nameLength));
    }
    at += 4 + length;
  }
  return undefined;
}
