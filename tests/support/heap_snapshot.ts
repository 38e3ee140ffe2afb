/**
 * Heap snapshots of a running agent, through the V8 inspector (`--inspect`): what its JavaScript heap holds, summed
 * by constructor, so two snapshots show what grows.
 */
import { within } from "./wait.ts";

/** Bytes and object count of one constructor (or string, code, …) in a snapshot. */
export interface HeapGroup {
  name: string;
  count: number;
  bytes: number;
}

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
  nodes: number[];
  strings: string[];
}

/** Takes a heap snapshot of the process whose inspector listens on `port`; returns its groups, largest first. */
export async function heapSnapshot(port: number): Promise<HeapGroup[]> {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json() as {
    webSocketDebuggerUrl: string;
  }[];
  const socket = new WebSocket(targets[0].webSocketDebuggerUrl);
  await within(
    new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = reject;
    }),
    "the inspector's socket to open",
  );
  const chunks: string[] = [];
  const done = new Promise<void>((resolve) => {
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data as string);
      if (message.method === "HeapProfiler.addHeapSnapshotChunk") chunks.push(message.params.chunk);
      if (message.id === 2) resolve();
    };
  });
  socket.send(JSON.stringify({ id: 1, method: "HeapProfiler.enable" }));
  socket.send(
    JSON.stringify({ id: 2, method: "HeapProfiler.takeHeapSnapshot", params: { reportProgress: false } }),
  );
  await within(done, "the heap snapshot", 120_000);
  socket.close();
  return groups(JSON.parse(chunks.join("")) as Snapshot);
}

function groups(snapshot: Snapshot): HeapGroup[] {
  const fields = snapshot.snapshot.meta.node_fields;
  const types = snapshot.snapshot.meta.node_types[0];
  const width = fields.length;
  const [typeAt, nameAt, sizeAt] = ["type", "name", "self_size"].map((f) => fields.indexOf(f));
  const byName = new Map<string, HeapGroup>();
  for (let i = 0; i < snapshot.nodes.length; i += width) {
    const type = types[snapshot.nodes[i + typeAt]];
    const name = type === "object" || type === "closure"
      ? `${type === "closure" ? "closure " : ""}${snapshot.strings[snapshot.nodes[i + nameAt]]}`
      : `(${type})`;
    const group = byName.get(name) ?? { name, count: 0, bytes: 0 };
    group.count++;
    group.bytes += snapshot.nodes[i + sizeAt];
    byName.set(name, group);
  }
  return [...byName.values()].sort((a, b) => b.bytes - a.bytes);
}

/** The groups that grew most from `before` to `after`. */
export function growth(before: HeapGroup[], after: HeapGroup[], top = 10): HeapGroup[] {
  const old = new Map(before.map((g) => [g.name, g]));
  return after.map((g) => ({
    name: g.name,
    count: g.count - (old.get(g.name)?.count ?? 0),
    bytes: g.bytes - (old.get(g.name)?.bytes ?? 0),
  })).sort((a, b) => b.bytes - a.bytes).slice(0, top);
}
