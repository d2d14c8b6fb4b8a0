/** Ends a read session at the gateway (`DELETE /v1/sessions/current`): the token reads nothing from then on. */
import { gatewayRequest } from "../internal/gateway-request";
import type { TollgateGatewayClient } from "../tollgate-client";

export interface CloseSessionParameters {
  /** The `tgs_…` token `openSession` returned. */
  session: string;
}
export interface CloseSessionReturnType {
  buyer: `0x${string}`;
  ended: true;
}
/** GatewayRequestError: invalid_api_key (already ended, expired or unknown), or unreachable. */
export type CloseSessionErrorType = Error;

export async function closeSession(client: TollgateGatewayClient, { session }: CloseSessionParameters): Promise<CloseSessionReturnType> {
  const closed = await gatewayRequest<{ buyer: `0x${string}`; ended: true }>(client, "/v1/sessions/current", { method: "DELETE", apiKey: session });
  return { buyer: closed.buyer, ended: closed.ended };
}
