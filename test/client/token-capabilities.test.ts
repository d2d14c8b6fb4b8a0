/**
 * getTokenCapabilities asks the token what it can do: the web app offers a permit deposit and a faucet only
 * where they work, and falls back to approve-then-deposit for a token without a permit.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import type { Address } from "viem";
import { getTokenCapabilities } from "../../client";
import { deployLocalTollgate, type LocalTollgate } from "../../scripts/lib/marketplace-fixtures";

describe("getTokenCapabilities", function () {
  let local: LocalTollgate;
  before(async function () {
    local = await deployLocalTollgate();
  });

  it("the test token signs permits and has a faucet, read as a wallet and without one", async function () {
    const buyer = local.buyers[0].address as Address;
    expect(await getTokenCapabilities(local.clientOf(buyer))).to.deep.equal({ permit: true, faucet: true });
    const { wallet: _wallet, ...readOnly } = local.clientOf(buyer);
    expect(await getTokenCapabilities(readOnly)).to.deep.equal({ permit: true, faucet: true });
  });

  it("a token without EIP-2612 is reported without a permit, so the app approves then deposits", async function () {
    const plain = await ethers.deployContract("FeeOnTransferToken");
    const client = local.clientOf(local.buyers[0].address as Address);
    const capabilities = await getTokenCapabilities({ ...client, contracts: { ...client.contracts, paymentToken: (await plain.getAddress()) as Address } });
    // It has a public mint (a test token too), but no nonces and no EIP-712 domain.
    expect(capabilities).to.deep.equal({ permit: false, faucet: true });
  });

  it("a contract that is not a mintable token has neither", async function () {
    const client = local.clientOf(local.buyers[0].address as Address);
    // The Tollgate contract itself: no `nonces`, no `mint`.
    const capabilities = await getTokenCapabilities({ ...client, contracts: { ...client.contracts, paymentToken: client.contracts.tollgate } });
    expect(capabilities).to.deep.equal({ permit: false, faucet: false });
  });
});
