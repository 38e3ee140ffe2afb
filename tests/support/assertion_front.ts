/**
 * A front for the real snapd of the test tier, which is an unregistered classic system (a generic model, no
 * serial): it answers `GET /v2/assertions/model` and `GET /v2/assertions/serial` with the fixture device's signed
 * assertions — as a device registered with its brand would — and forwards every other request to snapd unchanged.
 * The bench puts it in front of both agents alike, so that `device` does a device's real work.
 */
import { join } from "node:path";
import { assertionFixture } from "./fixtures.ts";

/** A running front. */
export interface AssertionFront {
  socketPath: string;
  stop(): Promise<void>;
}

/** Starts a front for the snapd at `upstream`. */
export async function startAssertionFront(upstream: string): Promise<AssertionFront> {
  const dir = await Deno.makeTempDir({ prefix: "snapd-front-" });
  const socketPath = join(dir, "snapd.socket");
  const client = Deno.createHttpClient({ proxy: { transport: "unix", path: upstream } });
  const own: Record<string, string> = {
    "/v2/assertions/model": assertionFixture("model.assert"),
    "/v2/assertions/serial": assertionFixture("serial-PEER0001.assert"),
  };
  const server = Deno.serve({ path: socketPath, transport: "unix", onListen: () => {} }, async (request) => {
    const url = new URL(request.url);
    const text = own[url.pathname];
    if (request.method === "GET" && text !== undefined) {
      return new Response(text, {
        headers: { "Content-Type": "application/x.ubuntu.assertion", "X-Ubuntu-Assertions-Count": "1" },
      });
    }
    const body = request.method === "GET" || request.method === "HEAD"
      ? undefined
      : await request.arrayBuffer();
    const answer = await fetch(`http://localhost${url.pathname}${url.search}`, {
      method: request.method,
      headers: request.headers,
      body,
      client,
    });
    return new Response(answer.body, { status: answer.status, headers: answer.headers });
  });
  return {
    socketPath,
    async stop() {
      await server.shutdown();
      client.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
