import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

/**
 * The 6-decimal, permit-capable test stablecoin (contracts/mocks/TestUSD.sol). Only for chains without a
 * real stablecoin to settle in: anyone can mint it.
 */
const TestTokenModule = buildModule("TestToken", (m) => {
  const testToken = m.contract("TestUSD");
  return { testToken };
});

export default TestTokenModule;
