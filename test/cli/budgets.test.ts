/**
 * `tollgate buyer budgets create|list|delete` against a running gateway, run in-process as a user would: each
 * command's effect is checked in the gateway's store, and a refused command is checked to change nothing.
 */
import path from "node:path";
import hre from "hardhat";
import { expect } from "chai";
import { generatePrivateKey, privateKeyToAddress } from "viem/accounts";
import { runCli } from "../../scripts/cli";
import { percentToBps } from "../../scripts/cli/buyer-budgets";
import { startRpcServer, type RpcServer } from "../../scripts/lib/rpc-server";
import { startGatewayHarness, type GatewayHarness } from "../helpers/gateway-harness";

async function run(args: string[], env: Record<string, string | undefined> = {}): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await runCli(args, { env, stdout: { write: (text: string) => (out += text) }, stderr: { write: (text: string) => (err += text) } });
  return { code, out, err };
}

describe("tollgate CLI: budgets through a running gateway", function () {
  let h: GatewayHarness;
  let rpc: RpcServer;
  const buyerKey = generatePrivateKey();
  const buyer = privateKeyToAddress(buyerKey);

  before(async () => {
    h = await startGatewayHarness();
    rpc = await startRpcServer(hre.network.provider);
  });
  after(async () => {
    await h?.close();
    await rpc?.close();
  });

  const cli = (args: string[]) => run(["--rpc", rpc.url, "--deployment", path.join(h.dir, "deployment.json"), "--gateway", h.url, ...args], { TOLLGATE_PRIVATE_KEY: buyerKey });
  const ok = async (args: string[]) => {
    const result = await cli(args);
    expect(result.code, `exit code; stderr: ${result.err}`).to.equal(0);
    return result;
  };

  it("percentages become basis points without a float, and bad ones are named", function () {
    expect(["80", "12.5", "0.01", "100", "33.33"].map((text) => percentToBps(text, "--thresholds"))).to.deep.equal([8000, 1250, 1, 10000, 3333]);
    for (const bad of ["0", "101", "12.345", "-5", "1e2", ""]) expect(() => percentToBps(bad, "--thresholds"), bad).to.throw(/not a percentage/);
  });

  it("budgets create prints the webhook secret once, budgets list shows the budget, budgets delete ends it", async () => {
    const created = await ok(["buyer", "budgets", "create", "--tag", "team:cli", "--period", "week", "--limit", "2.5", "--label", "cli team", "--thresholds", "50,90", "--webhook", "https://hooks.example.org/t"]);
    const id = /created budget (bud_[\w-]+) for/.exec(created.out)?.[1];
    expect(id, created.out).to.be.a("string");
    expect(created.out).to.contain("limit 2.5 tUSD");
    expect(created.out).to.match(/webhook secret whsec_[\w-]{43}/);
    const [stored] = h.gateway.ctx.store.listBudgets(buyer);
    expect([stored.id, stored.scope, stored.target, stored.period, stored.limit, stored.thresholdsBps, stored.label]).to.deep.equal([id, "tag", "team:cli", "week", 2_500_000n, [5000, 9000], "cli team"]);

    const listed = JSON.parse((await ok(["buyer", "budgets", "list", "--json"])).out) as { budgets: { id: string; limit: string; webhook_secret?: string }[] };
    expect(listed.budgets.map((b) => [b.id, b.limit, b.webhook_secret])).to.deep.equal([[id, "2500000", undefined]]);

    const both = await cli(["buyer", "budgets", "create", "--tag", "team:cli", "--trace", "run-1", "--limit", "1"]);
    expect(both.code).to.equal(1);
    expect(both.err).to.contain("exactly one of --tag and --trace");
    const duplicate = await cli(["buyer", "budgets", "create", "--tag", "team:cli", "--period", "week", "--limit", "1"]);
    expect(duplicate.code).to.equal(1);
    expect(duplicate.err).to.contain("budget_exists");
    expect(h.gateway.ctx.store.listBudgets(buyer)).to.have.length(1);

    await ok(["buyer", "budgets", "delete", id!]);
    expect(h.gateway.ctx.store.listBudgets(buyer)).to.deep.equal([]);
    const again = await cli(["buyer", "budgets", "delete", id!]);
    expect(again.code).to.equal(1);
    expect(again.err).to.contain("budget_not_found");
    expect((await ok(["buyer", "budgets", "list"])).out).to.contain("has no budgets");
  });
});
