/**
 * The oracle for N gateway instances on one host (TOLLGATE_GATEWAY_INSTANCES, `start-oracle --instances N`): one
 * stream per instance, with exactly the key and store file the launcher gives that instance.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import { generatePrivateKey } from "viem/accounts";
import { deriveInstanceSignerKey } from "../../server/gateway-instances/instance-keys";
import { planInstances } from "../../server/gateway-instances/instance-layout";
import { parseOracleConfig } from "../../server/oracle/config";
import { configProblems } from "../helpers/config-problems";

const SENDER = `0x${"22".repeat(32)}`;
const BASE = `0x${"11".repeat(32)}` as const;

describe("oracle configuration for N gateway instances", function () {
  let dir: string;
  const valid = (extra: Record<string, unknown> = {}) => ({ chain: { rpcUrl: "http://127.0.0.1:8545", deploymentFile: "deployment.json" }, store: { path: "data/usage.sqlite" }, ...extra });
  const problems = (raw: unknown, env: NodeJS.ProcessEnv): string => configProblems(() => parseOracleConfig(raw, env, dir, "test.json"));

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-oracle-instances-"));
    fs.writeFileSync(path.join(dir, "deployment.json"), JSON.stringify({ chainId: 31337, tollgate: "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512" }));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("settles every instance: each its derived key and its own store file, as the launcher names them", function () {
    const env = { TOLLGATE_ORACLE_KEY: SENDER, TOLLGATE_GATEWAY_SIGNER_KEY: BASE, TOLLGATE_GATEWAY_INSTANCES: "3" };
    const config = parseOracleConfig(valid(), env, dir);
    const storePath = path.join(dir, "data/usage.sqlite");
    expect(config.streams).to.deep.equal([1, 2, 3].map((i) => ({ storePath: path.join(dir, `data/usage.instance-${i}.sqlite`), signerKey: deriveInstanceSignerKey(BASE, i) })));
    // The gateway side plans from the same function: the oracle and the instances cannot disagree.
    expect(planInstances({ env, count: 3, storePath }).instances.map((i) => ({ storePath: i.storePath, signerKey: i.signerKey }))).to.deep.equal(config.streams);
  });

  it("takes listed keys, follows TOLLGATE_STORE_PATH, and keeps one gateway's stream when one instance is asked for", function () {
    const [a, b] = [generatePrivateKey(), generatePrivateKey()];
    const listed = parseOracleConfig(valid(), { TOLLGATE_ORACLE_KEY: SENDER, TOLLGATE_GATEWAY_SIGNER_KEYS: `${a},${b}`, TOLLGATE_GATEWAY_INSTANCES: "2", TOLLGATE_STORE_PATH: "/srv/u.db" }, dir);
    expect(listed.streams).to.deep.equal([
      { storePath: "/srv/u.instance-1.db", signerKey: a },
      { storePath: "/srv/u.instance-2.db", signerKey: b },
    ]);
    const one = parseOracleConfig(valid(), { TOLLGATE_ORACLE_KEY: SENDER, TOLLGATE_GATEWAY_SIGNER_KEY: BASE, TOLLGATE_GATEWAY_INSTANCES: "1" }, dir);
    expect(one.streams).to.deep.equal([{ storePath: path.join(dir, "data/usage.sqlite"), signerKey: BASE }]);
  });

  it("refuses instances mixed with explicit streams, a key list of the wrong length, a bad count, and an instance key as the gas key", function () {
    const streams = valid({ oracle: { streams: [{ storePath: "a.sqlite", signerKeyEnv: "KEY_A" }] } });
    expect(problems(streams, { TOLLGATE_ORACLE_KEY: SENDER, KEY_A: BASE, TOLLGATE_GATEWAY_SIGNER_KEY: BASE, TOLLGATE_GATEWAY_INSTANCES: "2" })).to.contain("oracle.streams already names");
    expect(problems(valid(), { TOLLGATE_ORACLE_KEY: SENDER, TOLLGATE_GATEWAY_SIGNER_KEYS: generatePrivateKey(), TOLLGATE_GATEWAY_INSTANCES: "2" })).to.contain("lists 1 key(s) but 2 instance(s)");
    expect(problems(valid(), { TOLLGATE_ORACLE_KEY: SENDER, TOLLGATE_GATEWAY_SIGNER_KEY: BASE, TOLLGATE_GATEWAY_INSTANCES: "many" })).to.contain("TOLLGATE_GATEWAY_INSTANCES");
    const second = deriveInstanceSignerKey(BASE, 2);
    expect(problems(valid(), { TOLLGATE_ORACLE_KEY: second, TOLLGATE_GATEWAY_SIGNER_KEY: BASE, TOLLGATE_GATEWAY_INSTANCES: "2" })).to.contain("use a key of its own");
  });
});
