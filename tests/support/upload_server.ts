/**
 * An HTTP server standing in for presigned upload URLs: records each PUT (headers and body) and answers `status` —
 * or, while `stall` is set, takes the body and never answers (until `stop()`), as a wedged upload service does.
 */

/** A received upload. */
export interface ReceivedUpload {
  method: string;
  path: string;
  contentLength: string | null;
  chunked: boolean;
  body: Uint8Array;
  text: string;
}

/** The server. */
export class UploadServer {
  readonly received: ReceivedUpload[] = [];
  /** Status of the next answers. */
  status = 200;
  /** Take each body and never answer, until stop(). */
  stall = false;
  readonly #server: Deno.HttpServer;
  readonly #released = Promise.withResolvers<void>();

  private constructor() {
    this.#server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
      const body = new Uint8Array(await request.arrayBuffer());
      this.received.push({
        method: request.method,
        path: new URL(request.url).pathname,
        contentLength: request.headers.get("content-length"),
        chunked: (request.headers.get("transfer-encoding") ?? "").includes("chunked"),
        body,
        text: new TextDecoder().decode(body),
      });
      if (this.stall) await this.#released.promise;
      return new Response(this.status >= 300 ? "denied" : null, { status: this.status });
    });
  }

  static start(): UploadServer {
    return new UploadServer();
  }

  /** An upload URL on this server. */
  url(path: string): string {
    return `http://127.0.0.1:${(this.#server.addr as Deno.NetAddr).port}${path}`;
  }

  async stop(): Promise<void> {
    this.#released.resolve();
    await this.#server.shutdown();
  }
}
