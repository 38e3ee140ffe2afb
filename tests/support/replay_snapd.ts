/**
 * Replays captured snapd responses byte for byte (status line, headers, chunked bodies) on a unix socket, so the
 * client is tested against exactly what a real snapd put on the wire. Each request is answered with the
 * fixture registered for its method and path (query included).
 */

/** A replaying server. */
export class ReplaySnapd {
  readonly #routes = new Map<string, Uint8Array>();
  readonly #listener: Deno.Listener;
  readonly #connections = new Set<Deno.Conn>();
  readonly requests: string[] = [];

  private constructor(readonly socketPath: string) {
    this.#listener = Deno.listen({ transport: "unix", path: socketPath });
    this.#accept();
  }

  /** Starts a server on a new socket path. */
  static start(): ReplaySnapd {
    return new ReplaySnapd(`${Deno.makeTempDirSync({ prefix: "replay-snapd-" })}/snapd.socket`);
  }

  /** Answers `METHOD path` with the raw response part of fixture `file` (a `tests/fixtures/snapd/` name). */
  route(method: string, path: string, file: string): this {
    const bytes = Deno.readFileSync(new URL(`../fixtures/snapd/${file}`, import.meta.url));
    const start = new TextDecoder("latin1").decode(bytes).indexOf("HTTP/1.1");
    this.#routes.set(`${method} ${path}`, bytes.subarray(start));
    return this;
  }

  close(): void {
    this.#listener.close();
    for (const connection of this.#connections) {
      try {
        connection.close();
      } catch { /* already closed */ }
    }
  }

  async #accept(): Promise<void> {
    try {
      for await (const connection of this.#listener) this.#serve(connection);
    } catch { /* closed */ }
  }

  async #serve(connection: Deno.Conn): Promise<void> {
    this.#connections.add(connection);
    const buffer = new Uint8Array(65536);
    let pending = "";
    try {
      for (;;) {
        const n = await connection.read(buffer);
        if (n === null) break;
        pending += new TextDecoder("latin1").decode(buffer.subarray(0, n));
        for (;;) {
          const end = pending.indexOf("\r\n\r\n");
          if (end < 0) break;
          const head = pending.slice(0, end);
          const length = Number(/content-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
          if (pending.length < end + 4 + length) break;
          pending = pending.slice(end + 4 + length);
          // through Deno's unix-socket proxy the target is in absolute form (http://localhost/v2/…), which Go's
          // server (snapd) accepts like the origin form
          const [method, target] = head.split(" ");
          const path = target.replace(/^https?:\/\/[^/]+/, "");
          this.requests.push(`${method} ${path}`);
          const response = this.#routes.get(`${method} ${path}`) ??
            new TextEncoder().encode("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n");
          await connection.write(response);
        }
      }
    } catch {
      /* client went away */
    } finally {
      this.#connections.delete(connection);
      try {
        connection.close();
      } catch { /* already closed */ }
    }
  }
}
