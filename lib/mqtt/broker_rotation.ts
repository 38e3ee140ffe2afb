/**
 * Which broker, and which of its addresses, the next connection attempt dials. The brokers are the one the
 * identity service names, then those of `mqtt.brokers`, in order. A broker named by host name is resolved when
 * its turn comes to every address it has (IPv6 and IPv4, in the resolver's order), and each is tried in turn; a
 * name that does not resolve is dialled as it is, so the attempt reports why. A round is one try of every
 * address of every broker (a broker listed twice counts once): an attempt that fails moves to the next address at once, and only once a whole round
 * has failed does the session wait its backoff. {@link BrokerRotation.restart} makes the next attempt start again
 * from the first broker (after a connection that was up dropped, or to move back to it).
 */
import { lookup } from "node:dns/promises";
import type { BrokerAddress } from "./broker_address.ts";

/** One connection attempt's target. */
export interface BrokerCandidate {
  /** The broker as configured: TLS verifies its name (or address), whatever address is dialled. */
  broker: BrokerAddress;
  /** What to dial: one of the broker's addresses, or its name when it cannot be resolved (or a proxy resolves it). */
  dial: string;
  /** The broker's place in the list: 0 is the one the identity service names. */
  rank: number;
}

/** Every address of a broker, in the order to try them. */
export type ResolveAddresses = (broker: BrokerAddress) => Promise<string[]>;

/** The system resolver (`getaddrinfo`, /etc/hosts included): every address, IPv6 and IPv4, in its order. */
export async function resolveAll(broker: BrokerAddress): Promise<string[]> {
  if (broker.kind !== "name") return [broker.host];
  const found = await lookup(broker.host, { all: true, verbatim: true });
  return [...new Set(found.map((entry) => entry.address))];
}

/** The order of connection attempts over the brokers and their addresses. */
export class BrokerRotation {
  readonly brokers: readonly BrokerAddress[];
  readonly #resolve: ResolveAddresses;
  /** The rank of the next broker to resolve. */
  #nextRank = 0;
  /** The addresses of the current broker not tried yet in this round. */
  #queue: BrokerCandidate[] = [];
  /** How many attempts this round has had. */
  #tried = 0;

  /** @param brokers the identity service's broker first; at least one */
  constructor(brokers: BrokerAddress[], resolve: ResolveAddresses = resolveAll) {
    if (brokers.length === 0) throw new TypeError("no broker to connect to");
    // a broker listed twice (mqtt.brokers naming every node, the identity service's among them) is tried once
    this.brokers = brokers.filter((broker, i) => brokers.findIndex((b) => b.label === broker.label) === i);
    this.#resolve = resolve;
  }

  /** The broker the identity service names. */
  get first(): BrokerAddress {
    return this.brokers[0];
  }

  /** True when every address of every broker has been tried since the round began. */
  get roundOver(): boolean {
    return this.#queue.length === 0 && this.#nextRank >= this.brokers.length;
  }

  /** How many attempts the current round has had. */
  get attemptsThisRound(): number {
    return this.#tried;
  }

  /** The target of the next attempt; a new round starts from the first broker once the last one ended. */
  async next(): Promise<BrokerCandidate> {
    if (this.roundOver) this.restart();
    while (this.#queue.length === 0) {
      const rank = this.#nextRank++;
      const broker = this.brokers[rank];
      const addresses = await this.#resolve(broker).catch(() => [] as string[]);
      const dial = addresses.length > 0 ? addresses : [broker.host];
      this.#queue = dial.map((address) => ({ broker, dial: address, rank }));
    }
    this.#tried++;
    return this.#queue.shift()!;
  }

  /** The next attempt starts a new round, from the first broker. */
  restart(): void {
    this.#nextRank = 0;
    this.#queue = [];
    this.#tried = 0;
  }
}

/** How a candidate is named in messages: the broker, and the address dialled when it is not the broker's own. */
export function describeCandidate(candidate: BrokerCandidate): string {
  const { broker, dial } = candidate;
  return dial === broker.host ? broker.label : `${broker.label} (${dial})`;
}
