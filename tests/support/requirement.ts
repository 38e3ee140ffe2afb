/**
 * Tests that need something a machine may lack (root for a mount, a snapd that can start): where it is missing,
 * the test is skipped with one line saying why — except under CI=true, where it runs and fails, because CI's
 * machine has everything and a silent skip there would hide a lost guarantee.
 */

const said = new Set<string>();

/** Test options: `{ ignore: true }` with one line on stderr when `missing` names what is missing outside CI. */
export function needs(test: string, missing: string | undefined): { ignore: boolean } {
  if (!missing || Deno.env.get("CI") === "true") return { ignore: false };
  const line = `${test}: skipped: ${missing} (with CI=true this is a failure)`;
  if (!said.has(line)) console.error(line);
  said.add(line);
  return { ignore: true };
}

/** "needs root" when this process is not root. */
export function rootMissing(why: string): string | undefined {
  return Deno.uid() === 0 ? undefined : `needs root (${why})`;
}
