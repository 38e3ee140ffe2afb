/**
 * The session's subscriptions, renewed on every connect: all of them granted, or the connection does not count
 * (a device "connected but deaf" is worse than one that says it is not connected).
 */
import type mqtt from "mqtt";
import type { Logger } from "../log.ts";

/** A topic filter to subscribe on every connect. */
export interface Subscription {
  topic: string;
  qos: 0 | 1;
}

/** The broker refused one or more subscriptions (SUBACK 0x80). */
export class SubscriptionRefusedError extends Error {
  override name = "SubscriptionRefusedError";
}

/** Subscribes every topic. @throws {SubscriptionRefusedError} naming the topics the broker refused */
export function subscribeAll(
  client: mqtt.MqttClient,
  subscriptions: Subscription[],
  clientId: string,
  log: Logger,
): Promise<void> {
  const request = Object.fromEntries(subscriptions.map(({ topic, qos }) => [topic, { qos }]));
  return new Promise((resolve, reject) => {
    client.subscribe(request, {}, (error, _granted, packet) => {
      const codes = packet?.granted ?? [];
      const refused = subscriptions.filter((_, i) => typeof codes[i] !== "number" || (codes[i] & 0x80) !== 0);
      if (!error && refused.length === 0) {
        for (const { topic } of subscriptions) log.debug(`subscribed to ${topic}`);
        return resolve();
      }
      const topics = (refused.length > 0 ? refused : subscriptions).map((s) => s.topic).join(", ");
      reject(
        new SubscriptionRefusedError(
          packet
            ? `the broker refused the subscription to ${topics} (SUBACK 0x80; check the broker's ACL for client id ${clientId}); reconnecting to subscribe again`
            : `subscribing to ${topics} failed (${error?.message}); reconnecting to subscribe again`,
        ),
      );
    });
  });
}
