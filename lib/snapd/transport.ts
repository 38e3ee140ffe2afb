/**
 * What the snapd client needs of the way to snapd (the real one is lib/adapters/snapd_http.ts: HTTP over snapd's
 * unix socket, its time limit, retries and turn-taking).
 */

/** snapd's JSON envelope: `sync`, `async` (with the change id) or `error`. */
export interface Envelope {
  type: string;
  result?: unknown;
  change?: string;
}

/** What a request carries besides its method and path. */
export interface RequestOptions {
  query?: Record<string, string | undefined>;
  body?: string;
  /** Sent as JSON with `Content-Type: application/json`. */
  json?: unknown;
}

/** Requests to snapd, each within the time limit and in its turn. */
export interface SnapdHttp {
  /** The socket it talks to. */
  readonly socketPath: string;
  /** Requests in flight and waiting for a turn. */
  readonly load: { running: number; waiting: number };
  /** Releases the connection pool. */
  close(): void;
  /** Reads and checks the JSON envelope; throws the SnapdError an error envelope describes. */
  envelope(response: Response, keepNumbers: boolean): Promise<Envelope>;
  /** A non-200 answer of a non-JSON endpoint: snapd's error envelope, or the status line. */
  fail(response: Response): Promise<never>;
  /** Sends the request and hands the response to `consume`, all within the time limit, in its turn. */
  exchange<T>(
    method: string,
    path: string,
    options: RequestOptions,
    consume: (response: Response) => Promise<T>,
  ): Promise<T>;
  /** A request whose body is streamed: the time limit covers the response headers only. */
  request(method: string, path: string, options?: RequestOptions): Promise<Response>;
  /** The same way to snapd at a lower priority: its requests wait while others wait for a turn. */
  yielding?(): SnapdHttp;
}
