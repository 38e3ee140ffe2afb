/** What the agent's own process uses: Deno's view of its memory and V8's heap, for `status` and the local API. */
import { getHeapStatistics } from "node:v8";

/** Memory of this process, in bytes. */
export interface ProcessMemory {
  /** Resident set size. */
  rss: number;
  /** V8 heap reserved and used. */
  heapTotal: number;
  heapUsed: number;
  /** Memory of JavaScript objects held outside the V8 heap (buffers). */
  external: number;
  /** The V8 heap's ceiling (`--max-old-space-size` and friends). */
  heapSizeLimit: number;
  /** Memory V8 allocated with malloc (compiler, parser), outside the heap. */
  mallocedMemory: number;
}

/** Reads this process's memory now. */
export function processMemory(): ProcessMemory {
  const usage = Deno.memoryUsage();
  const heap = getHeapStatistics();
  return {
    rss: usage.rss,
    heapTotal: usage.heapTotal,
    heapUsed: usage.heapUsed,
    external: usage.external,
    heapSizeLimit: heap.heap_size_limit,
    mallocedMemory: heap.malloced_memory,
  };
}
