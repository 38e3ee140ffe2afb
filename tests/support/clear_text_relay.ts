/**
 * A man in the middle on plain HTTP: a forward proxy on loopback that the agent is pointed at (`proxy.http`).
 * Whatever host the request names (a made-up one that resolves nowhere else) it forwards to one upstream — the
 * identity stub — and keeps a copy of every request and answer, as an attacker on the path would.
 */

/** One exchange the relay saw. */
export interface Relayed {
  /** `POST http://host/…`: the request line as the proxy received it. */
  request: string;
  /** The answer's body as it passed through. */
  answer: string;
}

/** A running relay. */
export class ClearTextRelay {
  /** Everything that passed through, in order. */
  readonly seen: Relayed[] = [];

  private constructor(private readonly server: Deno.HttpServer<Deno.NetAddr>) {}

  /** Starts relaying to `upstream` (an http:// base URL). */
  static start(upstream: string): ClearTextRelay {
    let relay: ClearTextRelay | undefined = undefined;
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
      const url = new URL(request.url);
      const target = new URL(url.pathname + url.search, upstream);
      const answer = await fetch(target, {
        method: request.method,
        headers: request.headers,
        body: request.body ? await request.arrayBuffer() : undefined,
      });
      const body = await answer.text();
      relay!.seen.push({ request: `${request.method} ${request.url}`, answer: body });
      return new Response(body, { status: answer.status, headers: answer.headers });
    });
    relay = new ClearTextRelay(server);
    return relay;
  }

  /** The relay as a proxy URL. */
  get url(): string {
    return `http://127.0.0.1:${this.server.addr.port}`;
  }

  async stop(): Promise<void> {
    await this.server.shutdown();
  }
}
