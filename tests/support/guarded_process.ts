/**
 * A process with the last-resort guard installed on its real global scope, for tests: it then lets an unhandled
 * rejection, an exception thrown in a timer callback, and an `error` event with no listener happen — the three
 * ways an error escapes everything — and says whether it is still alive.
 */
import { EventEmitter } from "node:events";
import { installLastResortGuard } from "../../lib/guard.ts";
import { createLogger } from "../../lib/log.ts";

let faults = 0;
installLastResortGuard({ log: createLogger("guarded", { level: "debug" }), onFault: () => faults++ });

Promise.reject(new TypeError("The property 'options.servername' must not be an IP address"));
setTimeout(() => {
  throw new RangeError("thrown in a timer");
}, 10);
setTimeout(() => new EventEmitter().emit("error", new Error("read ECONNRESET")), 20);
setTimeout(
  () => Promise.reject(new TypeError("The property 'options.servername' must not be an IP address")),
  30,
);
setTimeout(() => console.log(`still alive after ${faults} faults`), 100);
