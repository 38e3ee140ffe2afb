/**
 * `user`: `data` = `{"action":"create","email","sudoer","force-managed"}` or `{"action":"remove","username"}`,
 * through snapd's `POST /v2/users`; the result is snapd's (created or removed users).
 */
import type { UserRequest } from "../snapd/types.ts";
import type { ActionHandler } from "./context.ts";
import { parseDataObject } from "./validation.ts";

const optionalBoolean = (data: Record<string, unknown>, key: string): boolean | undefined => {
  const value = data[key];
  if (value !== undefined && typeof value !== "boolean") {
    throw new TypeError(`invalid data for user: "${key}" must be a boolean`);
  }
  return value as boolean | undefined;
};

/** The `user` action. */
export const userAction: ActionHandler = async (request, context) => {
  const data = parseDataObject(request.data, "user");
  let body: UserRequest;
  if (data.action === "create") {
    if (typeof data.email !== "string" || !/^[^@\s]+@[^@\s]+$/.test(data.email)) {
      throw new TypeError('invalid data for user: "create" needs an "email" address');
    }
    body = {
      action: "create",
      email: data.email,
      sudoer: optionalBoolean(data, "sudoer"),
      "force-managed": optionalBoolean(data, "force-managed"),
    };
  } else if (data.action === "remove") {
    if (typeof data.username !== "string" || !/^[a-z][-a-z0-9_]*$/.test(data.username)) {
      throw new TypeError('invalid data for user: "remove" needs a "username"');
    }
    body = { action: "remove", username: data.username };
  } else {
    throw new TypeError('invalid data for user: "action" must be "create" or "remove"');
  }
  return { result: await context.snapd.users(body) };
};
