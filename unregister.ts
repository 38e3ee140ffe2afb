/**
 * The `unregister` executable: clears the device's enrollment so it can join another DMS.
 * Not implemented yet (step 5): it says so and exits 1 without touching anything.
 */
if (import.meta.main) {
  console.error("unregister: not yet implemented in this version; nothing was changed");
  Deno.exit(1);
}
