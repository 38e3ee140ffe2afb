/** Loopback ports for test servers. */

/** Ports handed out by this process: never twice. */
const handedOut = new Set<number>();

/**
 * A TCP port that was free a moment ago on `hostname`, for a server that binds it a moment later. It is drawn
 * below the kernel's ephemeral range (32768 and up), which servers binding port 0 and every outgoing connection
 * take from, so a world started beside another cannot lose its port to them in that moment; and never twice.
 */
export function freePort(hostname = "127.0.0.1"): number {
  for (let attempt = 0; attempt < 1000; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (handedOut.has(port)) continue;
    try {
      Deno.listen({ hostname, port }).close();
    } catch {
      continue; // taken
    }
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free port on ${hostname} between 20000 and 32000`);
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
