/**
 * nats.js's node transport, hardened for Deno: when the server drops a connection (e.g. after
 * `Authorization Violation`) nats.js removes the socket's listeners and destroys it, and Deno's node
 * compatibility layer may still deliver a late `ECONNRESET` to the socket — with no listener, an uncaught error
 * that would stop the agent. A no-op listener is put back once the transport has closed.
 */
import { nodeResolveHost, NodeTransport } from "nats/lib/src/node_transport.js";
import { NatsConnectionImpl, setTransportFactory } from "nats/lib/nats-base-client/internal_mod.js";
import type { ConnectionOptions, NatsConnection } from "nats";

interface ClosableTransport {
  socket?: { on(event: string, listener: () => void): void };
  _closed(error?: Error, internal?: boolean): Promise<void>;
}

function hardenedTransport(): NodeTransport {
  const transport = new NodeTransport();
  const internals = transport as unknown as ClosableTransport;
  const close = internals._closed.bind(transport);
  internals._closed = async (error?: Error, internal = true) => {
    const socket = internals.socket;
    await close(error, internal);
    socket?.on("error", () => {}); // the connection is gone; late socket errors are noise
  };
  return transport;
}

/** Connects like nats.js's `connect`, with the hardened transport. */
export function connectNats(options: ConnectionOptions): Promise<NatsConnection> {
  setTransportFactory({ factory: hardenedTransport, dnsResolveFn: nodeResolveHost });
  return NatsConnectionImpl.connect(options) as Promise<NatsConnection>;
}
