/**
 * The one place that reaches into nats.js's internals — there is no supported way to do what it does.
 *
 * Why: nats.js's package entry (`connect` from "nats") does not load under Deno, so the agent builds the
 * connection from nats.js's node transport itself (`setTransportFactory`, `NatsConnectionImpl.connect`, both
 * exported only from internal modules). And when the server drops a connection (e.g. after
 * `Authorization Violation`) that transport removes the socket's listeners and destroys it, while Deno's node
 * compatibility layer may still deliver a late `ECONNRESET` — with no listener, an uncaught error. A no-op
 * listener is put back once the transport has closed (the socket is a private field, `_closed` a private
 * method). Behind a proxy, the TCP connection comes from the agent's dialer instead (`dial`, a private method).
 *
 * `tests/e2e/nats_transport_test.ts` checks every internal used here, so a nats.js update that changes them fails
 * that test instead of the agent; at run time a missing internal only costs the hardening (the last-resort guard
 * logs a stray socket error) and is logged once.
 */
import { nodeResolveHost, NodeTransport } from "nats/lib/src/node_transport.js";
import { NatsConnectionImpl, setTransportFactory } from "nats/lib/nats-base-client/internal_mod.js";
import type { ConnectionOptions, NatsConnection } from "nats";
import type { Socket } from "node:net";

/** The private members of nats.js's NodeTransport this file relies on. */
export interface TransportInternals {
  socket?: { on(event: string, listener: () => void): void };
  _closed(error?: Error, internal?: boolean): Promise<void>;
  /** Opens the TCP connection to one server (`hp.hostname`, `hp.port`); TLS, when used, starts on it. */
  dial(hp: { hostname: string; port: number }): Promise<Socket>;
}

/** True when nats.js's NodeTransport still has the private members the hardening needs. */
export function hasTransportInternals(transport: unknown): transport is TransportInternals {
  const internals = transport as Partial<TransportInternals>;
  return typeof internals._closed === "function" && typeof internals.dial === "function";
}

/** Opens a connection to a server another way (a proxy's CONNECT tunnel); undefined: dial directly. */
export type NatsDialer = (host: string, port: number) => Promise<Socket | undefined>;

let missingReported = false;

function hardenedTransport(dialer?: NatsDialer): NodeTransport {
  const transport = new NodeTransport();
  const internals: unknown = transport;
  if (!hasTransportInternals(internals)) {
    if (!missingReported) {
      missingReported = true;
      console.error("nats.js changed: NodeTransport._closed is gone; late socket errors are not silenced");
    }
    return transport;
  }
  const close = internals._closed.bind(transport);
  if (dialer) {
    const direct = internals.dial.bind(transport);
    // TLS, when the server asks for it, starts on the returned socket with the server's name: end to end
    internals.dial = async (hp) => (await dialer(hp.hostname, hp.port)) ?? await direct(hp);
  }
  internals._closed = async (error?: Error, internal = true) => {
    const socket = internals.socket;
    await close(error, internal);
    socket?.on("error", () => {}); // the connection is gone; late socket errors are noise
  };
  return transport;
}

/**
 * Connects like nats.js's `connect`, with the hardened transport; through `dialer` when given (server names are
 * then not resolved here: a proxy resolves them).
 */
export function connectNats(options: ConnectionOptions, dialer?: NatsDialer): Promise<NatsConnection> {
  setTransportFactory({ factory: () => hardenedTransport(dialer), dnsResolveFn: nodeResolveHost });
  return NatsConnectionImpl.connect(dialer ? { ...options, resolve: false } : options) as Promise<
    NatsConnection
  >;
}
