/** An HTTP server standing in for presigned upload URLs: records each PUT (headers and body) and answers `status`. */

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
  readonly #server: Deno.HttpServer;

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
    await this.#server.shutdown();
  }
}
