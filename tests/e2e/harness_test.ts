/** The test harness's own launchers work as later tests rely on them. */
import { connect } from "nats";
import { assertEquals, assertMatch } from "../support/assert.ts";
import { NatsServer } from "../support/nats_server.ts";

/** Speaks the NATS protocol by hand: CONNECT with `user`/`pass`, PING; returns what the server answers. */
async function rawLogin(port: number, user: string, pass: string): Promise<string> {
  const connection = await Deno.connect({ hostname: "127.0.0.1", port });
  const buffer = new Uint8Array(4096);
  let text = "";
  try {
    text += new TextDecoder().decode(buffer.subarray(0, (await connection.read(buffer)) ?? 0)); // INFO
    await connection.write(
      new TextEncoder().encode(`CONNECT ${JSON.stringify({ user, pass, verbose: false })}\r\nPING\r\n`),
    );
    while (!/PONG|-ERR/.test(text)) {
      const n = await connection.read(buffer);
      if (n === null) break;
      text += new TextDecoder().decode(buffer.subarray(0, n));
    }
  } finally {
    connection.close();
  }
  return text;
}

Deno.test({
  name: "the nats-server launcher enforces user/password authorization",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const server = await NatsServer.start({
      users: [{ user: "snapd", password: "accept solve carbon atmosphere" }],
    });
    try {
      assertMatch(await rawLogin(server.port, "snapd", "wrong"), /-ERR 'Authorization Violation'/);
      assertMatch(await rawLogin(server.port, "snapd", "accept solve carbon atmosphere"), /PONG/);
      const client = await connect({
        servers: server.url,
        user: "snapd",
        pass: "accept solve carbon atmosphere",
      });
      const sub = client.subscribe("v1.ping");
      (async () => {
        for await (const message of sub) message.respond(new TextEncoder().encode("pong"));
      })();
      const reply = await client.request("v1.ping", new Uint8Array(), { timeout: 2000 });
      assertEquals(new TextDecoder().decode(reply.data), "pong");
      await client.close();
    } finally {
      await server.stop();
    }
  },
});
