/** Pauses or resumes a model: gateways stop serving a paused model; usage already served still settles. */
import type { Hash } from "viem";
import { tollgateAbi } from "../../server/chain/abis";
import { sendTransaction } from "../internal/send-transaction";
import type { TollgateClient } from "../tollgate-client";

export interface SetModelPausedParameters {
  modelId: number;
  paused: boolean;
}
export interface SetModelPausedReturnType {
  hash: Hash;
}
/** Reverts: RegistryUnknownModel, RegistryNotProviderOwner, RegistryPauseUnchanged. */
export type SetModelPausedErrorType = Error;

export async function setModelPaused(client: TollgateClient, { modelId, paused }: SetModelPausedParameters): Promise<SetModelPausedReturnType> {
  const { hash } = await sendTransaction(client, `${paused ? "pause" : "resume"} model ${modelId}`, {
    address: client.contracts.tollgate,
    abi: tollgateAbi,
    functionName: "setModelPaused",
    args: [modelId, paused],
  });
  return { hash };
}
