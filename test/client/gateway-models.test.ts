/**
 * `listGatewayModels`: the models the gateway sells, named as API calls and key scopes name them, with the
 * prices the chain holds; an unreachable gateway is a GatewayRequestError without a status.
 */
import { expect } from "chai";
import { GatewayRequestError, listGatewayModels } from "../../client";
import type { Address } from "viem";
import { tollgateAbi } from "../../server/chain/abis";
import { startGatewayHarness, type GatewayHarness } from "../helpers/gateway-harness";

describe("listGatewayModels", function () {
  let h: GatewayHarness;
  let tollgate: Address;
  const clientAt = (url: string, timeoutMs?: number) => ({ gateway: { url, timeoutMs }, contracts: { chainId: 31337, tollgate } });
  before(async function () {
    h = await startGatewayHarness();
    tollgate = (await h.market.tollgate.getAddress()) as Address;
  });
  after(async function () {
    await h?.close();
  });

  it("lists every configured model with its id, kind and the chain's current prices", async function () {
    const models = await listGatewayModels(clientAt(h.url));
    expect(models.map((model) => model.id).sort()).to.deep.equal(["embed-model", "large-model", "small-model"]);
    const small = models.find((model) => model.id === "small-model")!;
    expect(small.tollgate.kind).to.equal("chat");
    const terms = await h.client.readContract({ address: tollgate, abi: tollgateAbi, functionName: "modelOf", args: [small.tollgate.model_id] });
    expect(small.tollgate.provider_id).to.equal(Number(terms.providerId));
    expect(small.tollgate.prices).to.not.equal(null);
    expect(BigInt(small.tollgate.prices!.input_per_million) > 0n).to.equal(true);
  });

  it("an unreachable gateway is a GatewayRequestError with no HTTP status", async function () {
    const error = await listGatewayModels(clientAt("http://127.0.0.1:9", 2_000)).catch((caught: unknown) => caught);
    expect(error).to.be.instanceOf(GatewayRequestError);
    expect((error as GatewayRequestError).status).to.equal(undefined);
  });
});
