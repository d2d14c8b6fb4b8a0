/**
 * The provider-bond and fraud-proof events, declared here until they reach the generated
 * `server/chain/abis.ts` (the contract change that adds them is under way on another branch); the auditor
 * decodes them with this ABI, so a deployment that emits none audits the same.
 */
import { parseAbi } from "viem";

export const bondEventsAbi = parseAbi([
  "event BondPosted(uint32 indexed providerId, address indexed payer, uint256 amount)",
  "event BondWithdrawalRequested(uint32 indexed providerId, uint256 amount, uint256 pending, uint256 withdrawableAt)",
  "event BondWithdrawalCancelled(uint32 indexed providerId, uint256 amount)",
  "event BondWithdrawn(uint32 indexed providerId, address indexed payout, uint256 amount)",
  "event GatewayFraudProven(address indexed signer, uint32 indexed providerId, uint64 indexed sequence, uint8 kind, address refundedBuyer, uint256 refund, address penalizedTo, uint256 penalty)",
]);
