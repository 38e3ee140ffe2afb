/**
 * A seeded fuzzer for the agent's two inputs: DMS payloads on `devices/sub/<id>` and requests on every subject of
 * the local NATS API. The generator knows, for each message it builds, whether the contract promises a reply
 * (a JSON object with a non-empty string id, under the size limit or with the id near the start when over it):
 * the oracle is the contract, not the agent's code. Garbage bytes, truncated JSON, wrong types, huge and deeply
 * nested values, odd action names, unicode and control characters, ids of every type.
 */
import { connectNats } from "../../lib/adapters/nats_connect.ts";
import { SUBJECTS } from "../../lib/nats/api.ts";
import { DEFAULT_NATS_PASSWORD } from "../../lib/settings.ts";
import { memoryOf } from "./proc_stats.ts";
import { sleep } from "./wait.ts";
import type { Child } from "./child.ts";
import type { World } from "./world.ts";

/** A small, fast, seeded PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One generated DMS payload and what the contract promises for it. */
export interface FuzzMessage {
  bytes: Uint8Array;
  /** The id a reply must carry, when one is promised. */
  replyId?: string;
  kind: string;
}

const ODD_NAMES = [
  "",
  "__proto__",
  "constructor",
  "toString",
  "hasOwnProperty",
  "install\u0000",
  "device\nINFO forged line",
  "\u001b[31mred",
  "ＤＥＶＩＣＥ",
  "😀",
  "a".repeat(5000),
  "DEVICE",
  " list ",
];
/** Actions the fuzzer may name; unregister would end the run, logs/snapshot/user would reach outside. */
const ACTIONS = [
  "device",
  "list",
  "info",
  "conf",
  "server",
  "install",
  "remove",
  "refresh",
  "revert",
  "enable",
  "disable",
  "switch",
  "start",
  "stop",
  "restart",
  "setconf",
  "ack",
];
const SNAPS = [
  "peer-svc",
  "peer-bbbase",
  "nosuch",
  "",
  "Bad_Name!",
  "a".repeat(300),
  "../../etc",
  "\u0000",
  "tab\there",
];
const LIMIT = 256 * 1024;

/** Builds the generator of DMS payloads for `seed`. */
export function dmsPayloads(seed: number): (n: number) => FuzzMessage {
  const random = prng(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)];
  const text = (max: number) => {
    const length = Math.floor(random() * max);
    let out = "";
    for (let i = 0; i < length; i++) out += String.fromCodePoint(Math.floor(random() ** 3 * 0x2ffff));
    return out;
  };
  const anyValue = (depth = 0): unknown => {
    switch (Math.floor(random() * 9)) {
      case 0:
        return null;
      case 1:
        return random() < 0.5;
      case 2:
        return Math.floor((random() - 0.5) * 2 ** 60);
      case 3:
        return random() * 1e308;
      case 4:
        return depth < 4 ? Array.from({ length: Math.floor(random() * 4) }, () => anyValue(depth + 1)) : [];
      case 5:
        return depth < 4 ? { [text(8)]: anyValue(depth + 1) } : {};
      default:
        return text(40);
    }
  };
  const nested = (depth: number) => "[".repeat(depth) + "]".repeat(depth);
  return (n) => {
    const id = `fz-${seed}-${n}`;
    const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
    switch (Math.floor(random() * 12)) {
      case 0: { // garbage bytes
        const bytes = crypto.getRandomValues(new Uint8Array(Math.floor(random() * 512)));
        bytes[0] = 0x80; // never valid JSON text start
        return { bytes, kind: "garbage bytes" };
      }
      case 1: { // truncated JSON
        const whole = JSON.stringify({ id, action: pick(ACTIONS), snap: pick(SNAPS), data: text(30) });
        return {
          bytes: new TextEncoder().encode(whole.slice(0, 1 + Math.floor(random() * (whole.length - 2)))),
          kind: "truncated JSON",
        };
      }
      case 2: // wrong types in the fields (an answer is promised: the id is good)
        return {
          bytes: encode({ id, action: anyValue(), snap: anyValue(), data: anyValue() }),
          replyId: id,
          kind: "wrong types",
        };
      case 3: { // ids of every type (only a non-empty string promises a reply)
        const value = random() < 0.15
          ? id
          : pick([0, 12, -1, null, true, false, [], {}, [id], { id }, "", 1.5]);
        return {
          bytes: encode({ id: value, action: "device" }),
          replyId: value === id ? id : undefined,
          kind: "ids of every type",
        };
      }
      case 4: // huge: over the size limit, the id first (answered with the reason)
        return {
          bytes: encode({
            id,
            action: "setconf",
            snap: "peer-svc",
            data: "x".repeat(LIMIT + Math.floor(random() * 50_000)),
          }),
          replyId: id,
          kind: "over the size limit",
        };
      case 5: // deeply nested
        return {
          bytes: new TextEncoder().encode(
            `{"id":"${id}","action":"device","data":${nested(Math.floor(random() * 50_000))}}`,
          ),
          replyId: id,
          kind: "deeply nested",
        };
      case 6: // odd action names
        return {
          bytes: encode({ id, action: pick(ODD_NAMES), snap: pick(SNAPS) }),
          replyId: id,
          kind: "odd action",
        };
      case 7: // unicode everywhere
        return {
          bytes: encode({ id, action: text(12), snap: text(12), data: text(200) }),
          replyId: id,
          kind: "unicode",
        };
      case 8: // not an object
        return { bytes: encode(pick([[id], id, 42, null, true, [{ id }]])), kind: "not an object" };
      case 9: // case-insensitive keys, as Go decodes
        return {
          bytes: encode({ ID: id, Action: pick(ACTIONS), SNAP: pick(SNAPS), Data: text(20) }),
          replyId: id,
          kind: "key case",
        };
      case 10: // empty
        return { bytes: new Uint8Array(), kind: "empty" };
      default: // a plausible request with random values
        return {
          bytes: encode({
            id,
            action: pick(ACTIONS),
            snap: pick(SNAPS),
            data: random() < 0.5 ? text(50) : JSON.stringify(anyValue()),
          }),
          replyId: id,
          kind: "plausible",
        };
    }
  };
}

/** What a fuzz run found. */
export interface FuzzResult {
  sent: number;
  promised: number;
  /** Ids promised a reply that got none, and ids with more than one. */
  missing: string[];
  doubled: string[];
  /** Replies to messages that were promised none. */
  unexpected: number;
  /** Log lines with a raw control character. */
  rawControlLines: string[];
  anonBefore: number;
  anonAfter: number;
  alive: boolean;
}

// deno-lint-ignore no-control-regex -- looking for control characters is the point
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029]/; // a tab is a control character too

/** Sends `count` fuzzed DMS payloads to a running agent, then checks one reply per promised id. */
export async function fuzzDms(
  world: World,
  agent: Child,
  deviceId: string,
  count: number,
  seed: number,
): Promise<FuzzResult> {
  const next = dmsPayloads(seed);
  const promised = new Set<string>();
  const after = world.dms.mark();
  const linesBefore = agent.mark();
  await world.dms.request(deviceId, { action: "device" });
  const anonBefore = memoryOf(agent.pid).anon;
  for (let n = 0; n < count; n++) {
    const message = next(n);
    if (message.replyId) promised.add(message.replyId);
    await world.dms.send(deviceId, message.bytes);
    if (n % 200 === 199) await world.dms.request(deviceId, { action: "device" }); // keep pace with the agent
  }
  const last = `fz-${seed}-end`;
  await world.dms.request(deviceId, { action: "device", id: last }, 120_000);
  await sleep(2000);
  const replies = new Map<string, number>();
  let unexpected = 0;
  for (const m of world.dms.responses(deviceId).slice(0)) {
    if (world.dms.messages.indexOf(m) < after) continue;
    const id = m.json?.id as string | undefined;
    if (!id || !id.startsWith(`fz-${seed}-`) || id === last) continue;
    replies.set(id, (replies.get(id) ?? 0) + 1);
    if (!promised.has(id)) unexpected++;
  }
  await sleep(3000); // memory back to its level: give the GC a moment
  return {
    sent: count,
    promised: promised.size,
    missing: [...promised].filter((id) => !replies.has(id)),
    doubled: [...replies].filter(([, n]) => n > 1).map(([id]) => id),
    unexpected,
    rawControlLines: agent.lines.slice(linesBefore).filter((line) => CONTROL.test(line)),
    anonBefore,
    anonAfter: memoryOf(agent.pid).anon,
    alive: await Promise.race([agent.status.then(() => false), sleep(100).then(() => true)]),
  };
}

/** Sends `count` fuzzed requests over every NATS subject; returns how many got other than exactly one reply. */
export async function fuzzNats(
  url: string,
  count: number,
  seed: number,
): Promise<{ sent: number; wrong: number }> {
  const random = prng(seed);
  const client = await connectNats({ servers: url, user: "snapd", pass: DEFAULT_NATS_PASSWORD });
  const replies = new Map<string, number>();
  const subscription = client.subscribe(`_INBOX.fuzz.${seed}.>`);
  const collecting = (async () => {
    for await (const message of subscription) {
      replies.set(message.subject, (replies.get(message.subject) ?? 0) + 1);
    }
  })();
  const payloads = [
    () => crypto.getRandomValues(new Uint8Array(Math.floor(random() * 300))),
    () => new Uint8Array(),
    () => new TextEncoder().encode("{"),
    () =>
      new TextEncoder().encode(
        JSON.stringify({ type: ["model", "serial", "bogus", 1, null][Math.floor(random() * 5)] }),
      ),
    () =>
      new TextEncoder().encode(
        JSON.stringify({
          action: ["start", "stop", "kill", 3][Math.floor(random() * 4)],
          names: [["peer-svc.daemon"], "x", [1], []][Math.floor(random() * 4)],
        }),
      ),
    () =>
      new TextEncoder().encode(
        JSON.stringify({
          action: "switch",
          channel: ["latest/edge", 5, "", "a/b/c/d"][Math.floor(random() * 4)],
        }),
      ),
    () =>
      new TextEncoder().encode(
        JSON.stringify({ select: ["all", "bogus", 7][Math.floor(random() * 3)], for: "peer-svc" }),
      ),
    () => new TextEncoder().encode("[".repeat(10_000) + "]".repeat(10_000)),
    () => new TextEncoder().encode(JSON.stringify("\u0000\u2028")),
  ];
  try {
    await client.flush();
    for (let n = 0; n < count; n++) {
      const definition = SUBJECTS[Math.floor(random() * SUBJECTS.length)];
      const subject = definition.subject.replace("*", ["peer-svc", "nosuch", "x".repeat(50)][n % 3]);
      client.publish(subject, payloads[Math.floor(random() * payloads.length)](), {
        reply: `_INBOX.fuzz.${seed}.${n}`,
      });
      if (n % 100 === 99) await client.flush();
    }
    await client.flush();
    for (let waited = 0; waited < 30_000 && replies.size < count; waited += 200) await sleep(200);
    await sleep(1000);
  } finally {
    subscription.unsubscribe();
    await collecting;
    await client.close();
  }
  let wrong = 0;
  for (let n = 0; n < count; n++) if (replies.get(`_INBOX.fuzz.${seed}.${n}`) !== 1) wrong++;
  return { sent: count, wrong };
}
