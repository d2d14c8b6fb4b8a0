/**
 * A gateway answer checked against its zod schema before an action returns it, so a caller never reads a field
 * that is not there: a gateway of another version fails here, naming the field, instead of later as undefined.
 */
import type { z } from "zod";
import { GatewayRequestError } from "../errors";

export function parseGatewayResponse<T extends z.ZodTypeAny>(schema: T, body: unknown, what: string): z.infer<T> {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const where = issue.path.length > 0 ? issue.path.map(String).join(".") : "the answer";
  throw new GatewayRequestError(`the gateway's ${what} is not in the expected shape (${where}: ${issue.message})`, {
    hint: "is the gateway the same Tollgate version as this client?",
  });
}
