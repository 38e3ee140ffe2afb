/** Loopback ports for test servers. */

/** A TCP port that was free a moment ago on `hostname`. */
export function freePort(hostname = "127.0.0.1"): number {
  const listener = Deno.listen({ hostname, port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Resolves once something accepts TCP connections on `hostname`:`port`. */
export async function waitForPort(port: number, hostname = "127.0.0.1", timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const connection = await Deno.connect({ hostname, port });
      connection.close();
      return;
    } catch (error) {
      if (Date.now() > deadline) {
        throw new Error(`nothing listens on ${hostname} port ${port}: ${(error as Error).message}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
