/** Validation at the edge: a route hands its zod schema and the raw body here and sees parsed data. */
import type { z } from "zod";
import { invalidRequest } from "../errors";

export function parseBody<T extends z.ZodTypeAny>(schema: T, body: unknown): z.infer<T> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw invalidRequest("The request body must be a JSON object. Send it with `Content-Type: application/json`.", null, "invalid_body");
  }
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const param = issue.path.map(String).join(".") || null;
    throw invalidRequest(`Invalid value for '${param ?? "body"}': ${issue.message}.`, param, "invalid_value");
  }
  return parsed.data;
}
