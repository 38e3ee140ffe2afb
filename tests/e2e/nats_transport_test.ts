/**
 * lib/adapters/nats_connect.ts is the only place that uses nats.js internals (there is no supported way): these tests
 * fail when a nats.js update changes what it relies on — the internal modules and exports, NodeTransport's
 * private `_closed` and `socket` — and show the hardening is applied to a real connection.
 */
import { NodeTransport } from "nats/lib/src/node_transport.js";
import { NatsConnectionImpl, setTransportFactory } from "nats/lib/nats-base-client/internal_mod.js";
import { connectNats, hasTransportInternals } from "../../lib/adapters/nats_connect.ts";
import { assertEquals, assertOk } from "../support/assert.ts";
import { NatsServer } from "../support/nats_server.ts";

Deno.test("nats.js still exports the internals the transport is built from", () => {
  assertEquals(typeof setTransportFactory, "function");
  assertEquals(typeof NatsConnectionImpl.connect, "function");
  assertOk(hasTransportInternals(new NodeTransport()), "NodeTransport._closed is a method");
});

Deno.test("on a real connection the transport keeps its socket in `socket`, and after close an error listener is on it", async () => {
  const server = await NatsServer.start({ users: [{ user: "snapd", password: "secret-pw" }] });
  const connect = NodeTransport.prototype.connect;
  const transports: NodeTransport[] = [];
  NodeTransport.prototype.connect = function (this: NodeTransport, ...args: Parameters<typeof connect>) {
    transports.push(this);
    return connect.apply(this, args);
  };
  try {
    const connection = await connectNats({ servers: server.url, user: "snapd", pass: "secret-pw" });
    assertEquals(transports.length, 1);
    const socket = (transports[0] as unknown as { socket?: { listenerCount(event: string): number } }).socket;
    assertOk(socket, "the socket is in the private field `socket`");
    await connection.close();
    assertOk(socket.listenerCount("error") >= 1, "a late socket error has a listener after close");
  } finally {
    NodeTransport.prototype.connect = connect;
    await server.stop();
  }
});
