/**
 * The client's actions as a browser wallet would run them: Hardhat's accounts sign over JSON-RPC
 * (eth_sendTransaction, eth_signTypedData_v4), a local account signs in-process. What every caller relies
 * on: progress reported in order, a revert decoded before anything is signed, a missing wallet named, and a
 * receipt judged against the chain rather than against the gateway's word.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { toHex, type Address } from "viem";
import { network } from "hardhat";
import {
  deposit,
  depositWithPermit,
  getBuyerPosition,
  requestWithdrawal,
  revertOf,
  setSignerAuthorization,
  mintTestTokens,
  registerProvider,
  verifyReceipt,
  WalletRequiredError,
  type TransactionProgress,
  type TollgateClient,
} from "../../client";
import { tollgateDomain, usageReceiptTypes } from "../../server/chain/eip712";
import { receiptToWire, type ReceiptEnvelope } from "../../server/chain/receipt-envelope";
import { hashReceipt, type UsageReceipt } from "../../server/chain/usage-batch";
import { deployMarketplace, SMALL_PRICES, USD, type Marketplace } from "../../scripts/lib/marketplace-fixtures";

/** A client that records every progress event it reports. */
function recording(client: TollgateClient): { client: TollgateClient; events: TransactionProgress[] } {
  const events: TransactionProgress[] = [];
  return { client: { ...client, onTransaction: (progress) => events.push(progress) }, events };
}

describe("client actions", function () {
  let m: Marketplace;
  beforeEach(async function () {
    m = await deployMarketplace();
  });

  describe("transactions", function () {
    it("a deposit by a JSON-RPC account reports signing, pending and confirmed in order, and credits the vault", async function () {
      const buyer = m.buyers[0].address as Address;
      const { client, events } = recording(m.clientOf(buyer));
      const result = await deposit(client, { amount: USD(25) });

      expect(result.credited).to.equal(USD(25));
      // The fixture's standing allowance covers the deposit, so no approve transaction is sent.
      expect(result.approveHash).to.equal(undefined);
      expect(events.map((e) => e.stage)).to.deep.equal(["signing", "pending", "confirmed"]);
      expect(events.every((e) => e.description === "deposit")).to.equal(true);
      const confirmed = events[2] as Extract<TransactionProgress, { stage: "confirmed" }>;
      expect(confirmed.hash).to.equal(result.hash);
      expect(confirmed.gasUsed > 0n).to.equal(true);
      const position = await getBuyerPosition(client, { buyer });
      expect(position.balance).to.equal(USD(25));
    });

    it("a local account deposits with a permit: one transaction, no approval left behind", async function () {
      const account = privateKeyToAccount(generatePrivateKey());
      await network.provider.request({ method: "hardhat_setBalance", params: [account.address, toHex(10n ** 18n)] });
      await mintTestTokens(m.clientOf(m.owner.address as Address), { amount: USD(40), to: account.address });
      const { client, events } = recording(m.clientOf(account));

      const result = await depositWithPermit(client, { amount: USD(40) });

      expect(result.credited).to.equal(USD(40));
      expect(events.filter((e) => e.stage === "confirmed")).to.have.length(1);
      expect(await m.token.allowance(account.address, await m.tollgate.getAddress())).to.equal(0n);
      expect((await m.tollgate.accountOf(account.address)).balance).to.equal(USD(40));
    });

    it("a revert is decoded into its custom error before anything is signed or sent", async function () {
      const buyer = m.buyers[1].address as Address;
      const { client, events } = recording(m.clientOf(buyer));
      const nonceBefore = await ethers.provider.getTransactionCount(buyer);

      const error = await requestWithdrawal(client, { amount: USD(1) }).then(
        () => undefined,
        (caught: unknown) => caught,
      );

      expect(error, "requestWithdrawal with an empty balance must throw").to.not.equal(undefined);
      const revert = revertOf(error);
      expect(revert?.name).to.equal("VaultInsufficientBalance");
      expect(revert?.named).to.deep.include({ buyer, balance: "0", needed: USD(1).toString() });
      expect(events, "no progress: nothing was signed").to.deep.equal([]);
      expect(await ethers.provider.getTransactionCount(buyer)).to.equal(nonceBefore);
    });

    it("an action that signs, given a client without a wallet, throws WalletRequiredError naming the action", async function () {
      const { wallet: _wallet, ...readOnly } = m.clientOf(m.buyers[0].address as Address);
      const error = await deposit(readOnly, { amount: USD(1) }).catch((caught: unknown) => caught);
      expect(error).to.be.instanceOf(WalletRequiredError);
      expect((error as WalletRequiredError).shortMessage).to.contain("deposit");
      expect((error as WalletRequiredError).hint).to.contain("walletClient");
    });
  });

  describe("verifyReceipt", function () {
    const buyerIndex = 2;
    let receipt: UsageReceipt;

    /** A receipt as the gateway signs it, for this deployment unless `chainId` says otherwise. */
    async function envelopeOf(fields: UsageReceipt, options: { chainId?: number; signWith?: Marketplace["gateway"] } = {}): Promise<ReceiptEnvelope> {
      const tollgate = (await m.tollgate.getAddress()) as Address;
      const signer = options.signWith ?? m.gateway;
      const domain = tollgateDomain(options.chainId ?? Number(m.chainId), tollgate);
      const signature = await signer.signTypedData({ domain, types: usageReceiptTypes, primaryType: "UsageReceipt", message: fields });
      return {
        domain: { name: domain.name!, version: domain.version!, chainId: Number(domain.chainId), verifyingContract: tollgate },
        signer: signer.address,
        primaryType: "UsageReceipt",
        receipt: receiptToWire(fields),
        receiptHash: hashReceipt(fields),
        signature,
        content: { salt: ethers.ZeroHash as `0x${string}`, requestHash: ethers.ZeroHash as `0x${string}`, responseHash: ethers.ZeroHash as `0x${string}` },
        model: "small-model",
        reasoningTokens: 0,
        countSource: "upstream",
      };
    }

    beforeEach(function () {
      const inputTokens = 1_200;
      const outputTokens = 300;
      receipt = {
        sequence: 0n,
        buyer: m.buyers[buyerIndex].address as Address,
        modelId: Number(m.smallModel),
        inputTokens,
        cachedInputTokens: 0,
        outputTokens,
        servedAt: 1_700_000_000,
        inputPrice: SMALL_PRICES.input,
        cachedInputPrice: SMALL_PRICES.cachedInput,
        outputPrice: SMALL_PRICES.output,
        cost: (BigInt(inputTokens) * SMALL_PRICES.input + BigInt(outputTokens) * SMALL_PRICES.output) / 1_000_000n,
        contentHash: ethers.keccak256(ethers.toUtf8Bytes("request and response")) as `0x${string}`,
      };
    });

    const reader = () => m.clientOf(m.buyers[buyerIndex].address as Address);

    it("a receipt signed by the provider's authorized gateway verifies, and is not settled yet", async function () {
      const verdict = await verifyReceipt(reader(), { envelope: await envelopeOf(receipt) });
      expect(verdict.problems).to.deep.equal([]);
      expect(verdict.valid).to.equal(true);
      expect(verdict.recoveredSigner).to.equal(m.gateway.address);
      expect(verdict.settled).to.equal(false);
    });

    it("a receipt whose cost was changed after signing fails on its hash and its signer", async function () {
      const envelope = await envelopeOf(receipt);
      envelope.receipt.cost = (receipt.cost + 1n).toString();
      const verdict = await verifyReceipt(reader(), { envelope });
      expect(verdict.valid).to.equal(false);
      const codes = verdict.problems.map((p) => p.code);
      expect(codes).to.include("hash_mismatch");
      // The signature now recovers to some other address, which is not the gateway the envelope names.
      expect(codes).to.include("signer_mismatch");
    });

    it("a receipt signed for another chain fails as wrong_domain", async function () {
      const verdict = await verifyReceipt(reader(), { envelope: await envelopeOf(receipt, { chainId: Number(m.chainId) + 1 }) });
      expect(verdict.valid).to.equal(false);
      expect(verdict.problems.map((p) => p.code)).to.include("wrong_domain");
    });

    it("a receipt signed by a key the provider never authorized, or has revoked, fails as signer_not_authorized", async function () {
      const stranger = privateKeyToAccount(generatePrivateKey());
      const byStranger = await verifyReceipt(reader(), { envelope: await envelopeOf(receipt, { signWith: stranger }) });
      expect(byStranger.problems.map((p) => p.code)).to.deep.equal(["signer_not_authorized"]);

      await setSignerAuthorization(m.clientOf(m.provider.address as Address), { providerId: Number(m.providerId), signer: m.gateway.address, authorized: false });
      const afterRevoke = await verifyReceipt(reader(), { envelope: await envelopeOf(receipt) });
      expect(afterRevoke.valid).to.equal(false);
      expect(afterRevoke.problems.map((p) => p.code)).to.deep.equal(["signer_not_authorized"]);
    });

    it("a receipt for one provider's model signed by another provider's gateway fails as signer_of_other_provider", async function () {
      const rival = m.clientOf(m.others[0].address as Address);
      const { providerId: rivalId } = await registerProvider(rival, { payout: m.others[0].address as Address, metadataUri: "ipfs://rival" });
      const rivalGateway = privateKeyToAccount(generatePrivateKey());
      await setSignerAuthorization(rival, { providerId: rivalId, signer: rivalGateway.address, authorized: true });
      const verdict = await verifyReceipt(reader(), { envelope: await envelopeOf(receipt, { signWith: rivalGateway }) });
      expect(verdict.problems.map((p) => p.code)).to.deep.equal(["signer_of_other_provider"]);
    });
  });
});
