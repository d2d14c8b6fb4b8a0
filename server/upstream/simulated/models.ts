/** `GET /v1/models`: a small fixed list; requests may name any model. */

/** Models listed by `GET /v1/models` (any other name is accepted too). */
export const SIMULATED_MODELS = ["sim-chat", "sim-chat-mini", "sim-reasoning", "sim-embedding"] as const;

const MODELS_CREATED = 1_700_000_000;

export function modelJson(id: string): Record<string, unknown> {
  return { id, object: "model", created: MODELS_CREATED, owned_by: "tollgate-simulated" };
}
