/**
 * The fuzzer against the real agent (tests/support/fuzz.ts): seeded DMS payloads and NATS requests over every
 * subject — no crash, exactly one reply per message that carries an id and per request, no raw control character
 * in a log line, memory back to its level. `deno task fuzz` runs 10,000 of each; `deno task test` a few hundred.
 */
import { DEFAULT_NATS_PASSWORD } from "../../lib/settings.ts";
import { assertEquals, assertOk } from "../support/assert.ts";
import { fuzzDms, fuzzNats } from "../support/fuzz.ts";
import { NatsServer } from "../support/nats_server.ts";
import { mb } from "../support/proc_stats.ts";
import { count, FULL, record } from "../support/reliability.ts";
import { E2E, withWorld } from "../support/world.ts";

const SEED = Number(Deno.env.get("FUZZ_SEED") ?? 20261129);

Deno.test({
  name: "fuzz: DMS payloads and NATS requests — no crash, one reply each, clean logs, memory back",
  ...E2E,
  async fn() {
    const messages = count(300, 10_000);
    // an even number: two halves
    const server = await NatsServer.start({ users: [{ user: "snapd", password: DEFAULT_NATS_PASSWORD }] });
    try {
      await withWorld(async (world) => {
        const agent = world.agent([], { IOTAGENT_NATS_ENABLED: "true", IOTAGENT_NATS_URL: server.url });
        const deviceId = await world.online();
        await agent.waitForLine(/connected to NATS/);
        // two halves: the first raises memory to its working level (large payloads, heap growth); the second
        // must not raise it further — memory back to its level, not growing with the number of messages
        const first = await fuzzDms(world, agent, deviceId, messages / 2, SEED);
        const second = await fuzzDms(world, agent, deviceId, messages / 2, SEED + 1);
        const dms = {
          ...second,
          sent: messages,
          promised: first.promised + second.promised,
          missing: [...first.missing, ...second.missing],
          doubled: [...first.doubled, ...second.doubled],
          unexpected: first.unexpected + second.unexpected,
          rawControlLines: [...first.rawControlLines, ...second.rawControlLines],
          alive: first.alive && second.alive,
        };
        const nats = await fuzzNats(server.url, messages, SEED);
        const growth = second.anonAfter - first.anonAfter;
        await record({
          area: "fuzz",
          fault: `${messages} fuzzed DMS payloads (seed ${SEED})`,
          tries: messages,
          lost: dms.missing.length,
          repeatedEffects: 0,
          repeatedReplies: dms.doubled.length,
          recovered: dms.alive ? messages : 0,
          note: `${dms.promised} promised a reply; anonymous memory ${mb(first.anonBefore)} MB before, ` +
            `${mb(first.anonAfter)} after the first half, ${mb(second.anonAfter)} after the second; ` +
            `${dms.rawControlLines.length} log lines with a raw control character`,
        });
        await record({
          area: "fuzz",
          fault: `${messages} fuzzed NATS requests over every subject (seed ${SEED})`,
          tries: messages,
          lost: nats.wrong,
          repeatedEffects: 0,
          repeatedReplies: 0,
          recovered: nats.sent - nats.wrong,
          note: "exactly one reply per request is the rule; lost counts requests with none or several",
        });
        assertOk(dms.alive, "the agent is still running");
        assertEquals(dms.missing, [], "every message with an id was answered");
        assertEquals(dms.doubled, [], "once");
        assertEquals(dms.unexpected, 0, "nothing answered that had no usable id");
        assertEquals(dms.rawControlLines, [], "no raw control character in a log line");
        assertEquals(nats.wrong, 0, "one reply per NATS request");
        if (FULL) {
          assertOk(
            growth < 8 * 1024 * 1024,
            `memory back to its level: the second half grew ${mb(growth)} MB`,
          );
        }
      });
    } finally {
      await server.stop();
    }
  },
});
