/**
 * The models the gateway sells (`GET /v1/models`), as it names them for API calls and for key scopes, with
 * the on-chain prices in force (per million tokens, base units as decimal strings). No signature, no key.
 */
import { gatewayRequest } from "../internal/gateway-request";
import type { TollgateGatewayClient } from "../tollgate-client";

export interface GatewayModelPrices {
  input_per_million: string;
  cached_input_per_million: string;
  output_per_million: string;
}

/** One model as server/gateway/routes/models.ts describes it (OpenAI's list shape with a `tollgate` part). */
export interface GatewayModel {
  /** The public name: what an API call's `model` and a key's model scope use. */
  id: string;
  object: "model";
  owned_by: string;
  tollgate: {
    kind: string;
    model_id: number;
    provider_id: number;
    paused: boolean;
    price_epoch: number | null;
    prices: GatewayModelPrices | null;
    scheduled: (GatewayModelPrices & { price_epoch: number; effective_from: number })[];
  };
}
export type ListGatewayModelsParameters = Record<string, never>;
export type ListGatewayModelsReturnType = GatewayModel[];
/** GatewayRequestError: the gateway cannot be reached or answered with an error. */
export type ListGatewayModelsErrorType = Error;

export async function listGatewayModels(client: TollgateGatewayClient, _parameters: ListGatewayModelsParameters = {}): Promise<ListGatewayModelsReturnType> {
  const { data } = await gatewayRequest<{ data: GatewayModel[] }>(client, "/v1/models", { method: "GET" });
  return data;
}
