/**
 * `tollgate usage report` and `tollgate usage outcome`, run in-process against a running gateway: the table, JSON,
 * CSV and log agree with the gateway's own figures and `/v1/usage`; without an API key the wallet opens a read
 * session for the run and ends it; outcomes are recorded in the store, and refusals (a repeat, an unknown run,
 * bad flags) exit 1 saying what to do, recording nothing.
 */
import path from "node:path";
import Database from "better-sqlite3";
import { expect } from "chai";
import hre, { ethers } from "hardhat";
import type { Address, Hex } from "viem";
import { runCli } from "../../scripts/cli";
import { USD } from "../../scripts/lib/marketplace-fixtures";
import { startGatewayHarness, type GatewayHarness } from "../helpers/gateway-harness";

interface CliRun {
  code: number;
  out: string;
  err: string;
}

describe("tollgate CLI: usage report and outcomes", function () {
  let h: GatewayHarness;
  let apiKey: string;
  let buyer: Address;
  let buyerKey: Hex;

  const cli = async (args: string[], env: Record<string, string | undefined> = { TOLLGATE_API_KEY: apiKey }): Promise<CliRun> => {
    let out = "";
    let err = "";
    const code = await runCli(["--deployment", path.join(h.dir, "deployment.json"), "--gateway", h.url, ...args], {
      env,
      stdout: { write: (text: string) => (out += text) },
      stderr: { write: (text: string) => (err += text) },
    });
    return { code, out, err };
  };
  const ok = (run: CliRun) => {
    expect(run.code, `exit code; stderr: ${run.err}`).to.equal(0);
    return run;
  };
  const usageTotal = async () => {
    const response = await fetch(`${h.url}/v1/usage`, { headers: { authorization: `Bearer ${apiKey}` } });
    return ((await response.json()) as { total_cost: string; total_cost_formatted: string });
  };
  const sessionRows = () => {
    const db = new Database(h.config.store.path, { readonly: true, fileMustExist: true });
    try {
      return (db.prepare("SELECT count(*) AS n FROM read_sessions").get() as { n: number }).n;
    } finally {
      db.close();
    }
  };

  before(async function () {
    this.timeout(120_000);
    h = await startGatewayHarness();
    const signer = h.market.buyers[0];
    buyer = signer.address as Address;
    // The harness's buyers are Hardhat's accounts 3 on (owner, treasury and provider come first).
    const accounts = hre.network.config.accounts as { mnemonic: string; path: string };
    buyerKey = ethers.HDNodeWallet.fromPhrase(accounts.mnemonic, "", `${accounts.path}/3`).privateKey as Hex;
    expect(ethers.computeAddress(buyerKey)).to.equal(buyer);
    await h.deposit(signer, USD(10));
    ({ key: apiKey } = await h.createKey(signer, { tags: ["team:support", "workflow:triage"] }));
    const client = h.openai(apiKey);
    for (const [trace, content] of [["run-a", "First."], ["run-a", "First, again."], ["run-b", "Second."]]) {
      await client.chat.completions.create({ model: "small-model", messages: [{ role: "user", content }], max_tokens: 8 }, { headers: { "x-tollgate-trace-id": trace, "x-tollgate-step": "answer" } });
    }
    await client.chat.completions.create({ model: "large-model", messages: [{ role: "user", content: "No run." }], max_tokens: 8 });
  });
  after(async () => h?.close());

  it("outcome records a run's success in the store; a repeat or an unknown run exits 1 with what to do, recording nothing", async function () {
    const recorded = ok(await cli(["usage", "outcome", "run-a", "ticket_resolved", "--success", "--value", "40"]));
    expect(recorded.out).to.contain("recorded ticket_resolved (success, value 40) for run run-a");
    ok(await cli(["usage", "outcome", "run-b", "ticket_resolved", "--failure"]));
    expect(h.gateway.ctx.store.outcomesOf(buyer).map((o) => [o.traceId, o.type, o.success, o.value])).to.deep.equal([
      ["run-a", "ticket_resolved", true, "40"],
      ["run-b", "ticket_resolved", false, null],
    ]);
    const count = h.gateway.ctx.store.outcomeCount();
    const repeat = await cli(["usage", "outcome", "run-a", "ticket_resolved", "--failure"]);
    expect(repeat.code).to.equal(1);
    expect(repeat.err).to.contain("outcome_exists");
    expect(repeat.err).to.contain("hint: a run has one outcome per type");
    const unknown = await cli(["usage", "outcome", "run-z", "ticket_resolved", "--success"]);
    expect(unknown.code).to.equal(1);
    expect(unknown.err).to.contain("trace_not_found");
    const neither = await cli(["usage", "outcome", "run-a", "reply_sent"]);
    expect(neither.code).to.equal(1);
    expect(neither.err).to.contain("--success or --failure");
    const keyless = await cli(["usage", "outcome", "run-a", "reply_sent", "--success"], {});
    expect(keyless.code).to.equal(1);
    expect(keyless.err).to.contain("TOLLGATE_API_KEY");
    expect(h.gateway.ctx.store.outcomeCount()).to.equal(count);
  });

  it("report prints the groups, a total equal to /v1/usage's, and the workflow's retry tail and outcomes", async function () {
    const { out } = ok(await cli(["usage", "report", "--group-by", "model"]));
    const { total_cost_formatted } = await usageTotal();
    const lines = out.split("\n");
    expect(lines[1]).to.match(/^model\s+calls\s+input\s+cached\s+output\s+cost \(tUSD\)$/);
    expect(lines.find((line) => line.startsWith("large-model"))).to.match(/^large-model\s+1\s/);
    expect(lines.find((line) => line.startsWith("small-model"))).to.match(/^small-model\s+3\s/);
    expect(lines.find((line) => line.startsWith("total"))).to.match(new RegExp(`^total\\s+4\\s.*\\s${total_cost_formatted.replace(".", "\\.")}$`));
    expect(out).to.contain("workflow:triage: 4 calls");
    expect(out).to.contain("retries: 1 call, ");
    expect(out).to.contain("runs: 2, 1 succeeded, 0 at the first try (0.00%)");
    expect(out).to.contain("ticket_resolved: 2 (1 succeeded, 1 failed)");
  });

  it("--json is the gateway's summary; --csv its CSV; --log the calls, paged", async function () {
    const json = JSON.parse(ok(await cli(["--json", "usage", "report", "--group-by", "tag"])).out) as { total: { cost: string; calls: number }; records_in_several_groups: number };
    expect(json.total.cost).to.equal((await usageTotal()).total_cost);
    expect(json.records_in_several_groups).to.equal(4);
    const csv = ok(await cli(["usage", "report", "--group-by", "day,key", "--csv"])).out;
    const direct = await (await fetch(`${h.url}/v1/usage/summary?group_by=day,key&format=csv`, { headers: { authorization: `Bearer ${apiKey}` } })).text();
    expect(csv).to.equal(direct);
    const page = ok(await cli(["usage", "report", "--log", "--limit", "3"])).out.trimEnd().split("\n");
    expect(page[0]).to.match(/^time\s+key\s+model\s+input\s+cached\s+output\s+bill$/);
    expect(page.slice(1, 4)).to.have.length(3);
    const next = /run again with --after (\d+)/.exec(page[4])?.[1];
    expect(next, page.join("\n")).to.be.a("string");
    const rest = ok(await cli(["usage", "report", "--log", "--after", next!])).out.trimEnd().split("\n");
    expect(rest).to.have.length(2);
    expect(rest[1]).to.contain("large-model");
  });

  it("without an API key, opens a read session with the wallet for the run and ends it", async function () {
    const before = sessionRows();
    const json = JSON.parse(ok(await cli(["--json", "usage", "report"], { TOLLGATE_PRIVATE_KEY: buyerKey })).out) as { buyer: string; total: { cost: string } };
    expect(json.buyer).to.equal(buyer);
    expect(json.total.cost).to.equal((await usageTotal()).total_cost);
    expect(sessionRows()).to.equal(before);
    const none = await cli(["usage", "report"], {});
    expect(none.code).to.equal(1);
    expect(none.err).to.contain("TOLLGATE_API_KEY");
  });

  it("refuses bad flags before asking the gateway, naming them", async function () {
    const cases: [string[], string][] = [
      [["--group-by", "key,team"], '--group-by "team" is not a dimension'],
      [["--from", "2026-12-02", "--to", "2026-12-01"], "is not before --to"],
      [["--from", "yesterday"], '--from "yesterday" is not a time'],
      [["--log", "--group-by", "day"], "leave out --group-by"],
      [["--limit", "5"], "use them with --log"],
      [["--csv", "--json"], "choose one"],
    ];
    for (const [args, message] of cases) {
      const run = await cli(["usage", "report", ...args]);
      expect(run.code, args.join(" ")).to.equal(1);
      expect(run.err, args.join(" ")).to.contain(message);
    }
  });
});
