/**
 * The most a call can cost before it is served: its prompt estimate with a margin, every input token at the
 * dearer of the two input prices (the cache split is only known afterwards), and every output token it may
 * produce. One definition for the meter, which reserves it, and the router, which compares it across models.
 */
import type { PriceEpoch } from "../../chain/marketplace-reader";
import { recordCost } from "../../chain/pricing";
import { reservedInputTokens } from "./usage-counts";

export interface ReservationCost {
  amount: bigint;
  reservedInput: number;
}

export function reservationCost(epoch: PriceEpoch, inputEstimate: number, maxOutputTokens: number): ReservationCost {
  const reservedInput = reservedInputTokens(inputEstimate);
  const inputPrice = epoch.cachedInput > epoch.input ? epoch.cachedInput : epoch.input;
  const amount = recordCost({ inputTokens: reservedInput, cachedInputTokens: 0, outputTokens: maxOutputTokens }, { input: inputPrice, cachedInput: inputPrice, output: epoch.output });
  return { amount, reservedInput };
}
