/**
 * The size bound of a reply: a broker drops the connection of a client that sends a packet over its own limit
 * (mosquitto's `max_packet_size`), so a reply larger than the broker takes would be sent, refused and sent again
 * for ever, holding every later reply behind it. A reply whose PUBLISH packet would exceed `mqtt.max-reply-bytes`
 * is replaced by a `success:false` reply that says how large the result was — small, so it always goes out.
 */
import { type ActionResponse, encodeActionResponse } from "../dms_protocol/messages.ts";

/** The default of `mqtt.max-reply-bytes`: 128 KiB, what a broker configured like mosquitto's examples takes. */
export const DEFAULT_MAX_REPLY_BYTES = 128 * 1024;

const encoder = new TextEncoder();

/** Bytes of the MQTT length field for a remaining length of `n` (1 to 4). */
function lengthBytes(n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4;
}

/**
 * The size of the QoS 1 PUBLISH packet that carries `payload` on `topic`, in bytes: what the broker compares with
 * its limit (fixed header, topic with its length, packet id, payload).
 */
export function publishPacketBytes(topic: string, payload: string): number {
  const remaining = 2 + encoder.encode(topic).length + 2 + encoder.encode(payload).length;
  return 1 + lengthBytes(remaining) + remaining;
}

/** Encodes `response` for `topic`; a reply over `maxBytes` becomes a refusal that names its size. */
export function encodeBoundedReply(response: ActionResponse, topic: string, maxBytes: number): string {
  const payload = encodeActionResponse(response);
  const bytes = publishPacketBytes(topic, payload);
  if (bytes <= maxBytes) return payload;
  return encodeActionResponse({
    action: response.action,
    id: response.id,
    success: false,
    message: `the reply was too large to send: ${bytes} bytes, more than mqtt.max-reply-bytes (${maxBytes})` +
      (response.success ? "" : `; its error began: ${response.message?.slice(0, 200) ?? ""}`),
  });
}
