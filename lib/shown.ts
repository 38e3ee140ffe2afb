/**
 * A value from outside (a setting, a URL, a key) as a one-line message shows it: quoted as JSON (so control
 * characters are escaped and the end of the value is visible) and cut when long — a pasted certificate must not
 * flood the journal.
 */

import { escapeControl } from "./log.ts";

/** Longest value shown, in characters; the rest is cut. */
export const SHOWN_CHARACTERS = 80;

/** `value` as JSON, cut to {@link SHOWN_CHARACTERS} with the full length said. */
export function showValue(value: unknown): string {
  const shown = escapeControl(JSON.stringify(value) ?? String(value));
  if (shown.length <= SHOWN_CHARACTERS) return shown;
  return `${shown.slice(0, SHOWN_CHARACTERS - 20)}… (${shown.length} characters)`;
}
