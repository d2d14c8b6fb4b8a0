/** The oracle's configuration: the shared config file's `oracle` section plus the environment, checked at start-up. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import { parseOracleConfig } from "../../server/oracle/config";
import { configProblems } from "../helpers/config-problems";

const SENDER = `0x${"22".repeat(32)}`;
const SIGNER = `0x${"11".repeat(32)}`;

describe("oracle configuration", function () {
  let dir: string;
  const valid = () => ({ chain: { rpcUrl: "http://127.0.0.1:8545", deploymentFile: "deployment.json" }, store: { path: "data/usage.sqlite" } });
  const problems = (raw: unknown, env: NodeJS.ProcessEnv): string => configProblems(() => parseOracleConfig(raw, env, dir, "test.json"));

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-oracle-config-"));
    fs.writeFileSync(path.join(dir, "deployment.json"), JSON.stringify({ chainId: 31337, tollgate: "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512", deployBlock: 7 }));
  });

  it("defaults to settling the gateway of the same file, with its store and signer key", function () {
    const config = parseOracleConfig(valid(), { TOLLGATE_ORACLE_KEY: SENDER, TOLLGATE_GATEWAY_SIGNER_KEY: SIGNER }, dir);
    expect(config.streams).to.deep.equal([{ storePath: path.join(dir, "data/usage.sqlite"), signerKey: SIGNER }]);
    expect(config.batch).to.deep.equal({ maxRecords: 500, maxAgeMs: 10_000 });
    expect(config.deployment.deployBlock).to.equal(7);
    expect(config.journalPath).to.equal(path.join(dir, "data/oracle-journal.json"));
    expect(config.failpoints).to.deep.equal([]);
  });

  it("settles several gateways' streams, each key from its own variable", function () {
    const raw = { ...valid(), oracle: { streams: [{ storePath: "a.sqlite", signerKeyEnv: "KEY_A" }, { storePath: "/abs/b.sqlite", signerKeyEnv: "KEY_B" }] } };
    const config = parseOracleConfig(raw, { TOLLGATE_ORACLE_KEY: SENDER, KEY_A: SIGNER, KEY_B: `0x${"33".repeat(32)}` }, dir);
    expect(config.streams.map((s) => s.storePath)).to.deep.equal([path.join(dir, "a.sqlite"), "/abs/b.sqlite"]);
  });

  it("says which key is missing, and refuses a gateway key as the gas key", function () {
    expect(problems(valid(), { TOLLGATE_GATEWAY_SIGNER_KEY: SIGNER })).to.contain("TOLLGATE_ORACLE_KEY");
    expect(problems(valid(), { TOLLGATE_ORACLE_KEY: SENDER })).to.contain("TOLLGATE_GATEWAY_SIGNER_KEY");
    expect(problems(valid(), { TOLLGATE_ORACLE_KEY: SIGNER, TOLLGATE_GATEWAY_SIGNER_KEY: SIGNER })).to.contain("use a key of its own");
    expect(problems(valid(), { TOLLGATE_ORACLE_KEY: "0x1234", TOLLGATE_GATEWAY_SIGNER_KEY: SIGNER })).to.contain("32-byte private key");
  });

  it("names bad settings", function () {
    const env = { TOLLGATE_ORACLE_KEY: SENDER, TOLLGATE_GATEWAY_SIGNER_KEY: SIGNER };
    const message = problems({ ...valid(), oracle: { batch: { maxRecords: 0 }, gas: { feeBumpPercent: 5 } } }, env);
    expect(message).to.contain("oracle.batch.maxRecords").and.contain("oracle.gas.feeBumpPercent");
    expect(problems({ ...valid(), chain: { deploymentFile: "missing.json" } }, env)).to.contain("cannot read the deployment file");
    expect(problems(valid(), { ...env, TOLLGATE_ORACLE_PORT: "http" })).to.contain("TOLLGATE_ORACLE_PORT");
  });
});
