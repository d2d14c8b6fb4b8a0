/**
 * Tollgate, deployed with Hardhat Ignition.
 *
 * Ignition builds a module's graph before it knows any parameter value, so "deploy the test token unless a
 * payment token is given" cannot be a branch inside one module. There are two modules over one builder:
 *
 * - `Tollgate` (this file's default export) settles in an existing ERC-20 named by the required
 *   `paymentToken` parameter. For real chains:
 *     npx hardhat ignition deploy ignition/modules/Tollgate.ts --network rpc --parameters params.json
 * - `TollgateWithTestToken` (ignition/modules/TollgateWithTestToken.ts) deploys the TestUSD mock first and
 *   settles in it. For local chains.
 *
 * Both read the same optional parameters: withdrawalDelaySeconds, priceNoticeSeconds, protocolFeeBps,
 * treasury and owner (both default to the deploying account). A parameters file can give them per module
 * id or under "$global" for either (see ignition/parameters/local.json).
 * scripts/lib/deploy-tollgate.ts picks the module and writes the deployment file the gateway reads.
 */
import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";
import type { ArgumentType, IgnitionModuleBuilder } from "@nomicfoundation/ignition-core";
import TestTokenModule from "./TestToken";

export const TOLLGATE_DEFAULTS = {
  /** Longer than any settlement window, so usage served before a withdrawal request is still paid for. */
  withdrawalDelaySeconds: 3n * 24n * 3600n,
  /** How long buyers see a price change coming before it applies. */
  priceNoticeSeconds: 24n * 3600n,
  /** 2.5%. The contract caps the fee at MAX_FEE_BPS and reverts VaultFeeTooHigh above it. */
  protocolFeeBps: 250n,
} as const;

/** The Tollgate contract over `paymentToken`, and the ERC-1155 credits token its constructor deploys. */
function tollgateOver(m: IgnitionModuleBuilder, paymentToken: ArgumentType) {
  const deployer = m.getAccount(0);
  const tollgate = m.contract("Tollgate", [
    paymentToken,
    m.getParameter("withdrawalDelaySeconds", TOLLGATE_DEFAULTS.withdrawalDelaySeconds),
    m.getParameter("priceNoticeSeconds", TOLLGATE_DEFAULTS.priceNoticeSeconds),
    m.getParameter("protocolFeeBps", TOLLGATE_DEFAULTS.protocolFeeBps),
    m.getParameter("treasury", deployer),
    m.getParameter("owner", deployer),
  ]);
  // Tollgate creates the credits token itself (so only it can mint); Ignition learns its address by asking.
  const credits = m.contractAt("TollgateCredits", m.staticCall(tollgate, "credits"));
  return { tollgate, credits };
}

/** Settles in the existing ERC-20 at the `paymentToken` parameter. */
export const TollgateModule = buildModule("Tollgate", (m) => {
  return tollgateOver(m, m.getParameter<string>("paymentToken"));
});

/** Deploys the TestUSD mock and settles in it. */
export const TollgateWithTestTokenModule = buildModule("TollgateWithTestToken", (m) => {
  const { testToken } = m.useModule(TestTokenModule);
  return { ...tollgateOver(m, testToken), testToken };
});

export default TollgateModule;
