/**
 * std-style assertions on top of `node:assert/strict` (JSR's @std/assert cannot be downloaded here).
 * `assertThrows` and `assertRejects` return the error so tests can look at it.
 */
import assert from "node:assert/strict";

type Message = string | undefined;
const deepEqual = assert.deepStrictEqual as (actual: unknown, expected: unknown, message: Message) => void;
const ok = assert.ok as (value: unknown, message: Message) => void;
const match = assert.match as (text: string, pattern: RegExp, message: Message) => void;

/** Deep strict equality. */
export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  deepEqual(actual, expected, message);
}

/** Truthiness. */
export function assertOk(value: unknown, message?: string): asserts value {
  ok(value, message);
}

/** `text` matches `pattern`. */
export function assertMatch(text: string, pattern: RegExp, message?: string): void {
  match(text, pattern, message);
}

/** `text` contains `part`. */
export function assertIncludes(text: string, part: string, message?: string): void {
  ok(
    text.includes(part),
    message ?? `expected ${JSON.stringify(text.slice(0, 500))} to include ${JSON.stringify(part)}`,
  );
}

type ErrorClass = abstract new (...args: never[]) => Error;

/** `fn` throws an instance of `type` whose message includes `includes`; returns the error. */
export function assertThrows(
  fn: () => unknown,
  type: ErrorClass = Error,
  includes?: string,
  message?: string,
): Error {
  try {
    fn();
  } catch (error) {
    check(error, type, includes, message);
    return error as Error;
  }
  throw new assert.AssertionError({ message: message ?? "expected a throw" });
}

/** `promise` rejects with an instance of `type` whose message includes `includes`; returns the error. */
export async function assertRejects(
  promise: Promise<unknown> | (() => Promise<unknown>),
  type: ErrorClass = Error,
  includes?: string,
): Promise<Error> {
  try {
    await (typeof promise === "function" ? promise() : promise);
  } catch (error) {
    check(error, type, includes);
    return error as Error;
  }
  throw new assert.AssertionError({ message: "expected a rejection" });
}

function check(error: unknown, type: ErrorClass, includes: string | undefined, message?: string): void {
  ok(error instanceof type, message ?? `expected ${type.name}, got ${String(error)}`);
  if (includes !== undefined) assertIncludes((error as Error).message, includes, message);
}
