/** Configuration: one zod-validated file plus the environment; a bad value stops start-up and says what to fix. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { expect } from "chai";
import { ConfigError, DEFAULT_APP_DIR, parseGatewayConfig } from "../../server/config";

const SIGNER = `0x${"11".repeat(32)}`;

describe("gateway configuration", function () {
  let dir: string;
  const valid = () => ({
    chain: { rpcUrl: "http://127.0.0.1:8545", deploymentFile: "deployment.json" },
    providerId: 1,
    upstreams: { sim: { baseUrl: "http://127.0.0.1:8080/v1" }, paid: { baseUrl: "https://api.example.com/v1", apiKeyEnv: "PAID_KEY" } },
    models: [{ name: "small-model", modelId: 1, upstream: "sim" }],
  });
  const parse = (raw: unknown, env: NodeJS.ProcessEnv = { TOLLGATE_GATEWAY_SIGNER_KEY: SIGNER, PAID_KEY: "k" }) => parseGatewayConfig(raw, env, dir, "test.json");
  const problems = (raw: unknown, env?: NodeJS.ProcessEnv): string => {
    try {
      parse(raw, env);
    } catch (error) {
      expect(error).to.be.instanceOf(ConfigError);
      return (error as Error).message;
    }
    throw new Error("expected a ConfigError");
  };

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-config-"));
    fs.writeFileSync(path.join(dir, "deployment.json"), JSON.stringify({ chainId: 31337, tollgate: "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512" }));
  });

  it("fills defaults, resolves paths against the file's folder, and reads secrets from the environment", function () {
    const config = parse(valid());
    expect(config.listen).to.deep.equal({ host: "127.0.0.1", port: 8787 });
    expect(config.store.path).to.equal(path.join(dir, "data/usage.sqlite"));
    expect(config.models[0]).to.include({ kind: "chat", encoding: "o200k_base", maxOutputTokens: 4096 });
    expect(config.upstreams.paid.apiKey).to.equal("k");
    expect(config.chain.deployment.chainId).to.equal(31337);
    expect(config.signerKey).to.equal(SIGNER);
  });

  it("lets the environment override the port, RPC URL and store path", function () {
    const config = parse(valid(), { TOLLGATE_GATEWAY_SIGNER_KEY: SIGNER, PAID_KEY: "k", TOLLGATE_PORT: "9999", TOLLGATE_RPC_URL: "http://rpc.example:8545", TOLLGATE_STORE_PATH: "/tmp/x.sqlite" });
    expect(config.listen.port).to.equal(9999);
    expect(config.chain.rpcUrl).to.equal("http://rpc.example:8545");
    expect(config.store.path).to.equal("/tmp/x.sqlite");
  });

  it("names each bad field and what to put there", function () {
    const raw = valid();
    const message = problems({ ...raw, providerId: 0, models: [{ name: "bad name!", modelId: 1, upstream: "nowhere" }] });
    expect(message).to.contain("providerId");
    expect(message).to.contain("models.0.name");
    expect(problems({ ...raw, models: [{ name: "m", modelId: 1, upstream: "nowhere" }] })).to.contain('no upstream named "nowhere"');
    expect(problems({ ...raw, models: [raw.models[0], raw.models[0]] })).to.contain('duplicate model name "small-model"');
  });

  it("refuses a missing signer key, a missing upstream key variable and a bad deployment file", function () {
    expect(problems(valid(), { PAID_KEY: "k" })).to.contain("TOLLGATE_GATEWAY_SIGNER_KEY");
    expect(problems(valid(), { TOLLGATE_GATEWAY_SIGNER_KEY: "0x1234", PAID_KEY: "k" })).to.contain("32-byte private key");
    expect(problems(valid(), { TOLLGATE_GATEWAY_SIGNER_KEY: SIGNER })).to.contain("the variable PAID_KEY is not set");
    expect(problems({ ...valid(), chain: { rpcUrl: "http://x:1", deploymentFile: "missing.json" } })).to.contain("cannot read the deployment file");
  });

  it("serves the web app from the repository's app/dist by default, telling browsers the chain's RPC URL", function () {
    const config = parse(valid());
    expect(DEFAULT_APP_DIR).to.equal(path.resolve(__dirname, "..", "..", "app", "dist"));
    expect(config.app).to.deep.equal({ dir: DEFAULT_APP_DIR, publicRpcUrl: "http://127.0.0.1:8545", explorerUrl: null });
    expect(config.limits.sessionLifetimeSeconds).to.equal(12 * 3600);
    // The RPC URL the environment gives the gateway is also the browsers' unless `app.publicRpcUrl` says otherwise.
    const fromEnv = parse(valid(), { TOLLGATE_GATEWAY_SIGNER_KEY: SIGNER, PAID_KEY: "k", TOLLGATE_RPC_URL: "http://rpc.example:8545" });
    expect(fromEnv.app.publicRpcUrl).to.equal("http://rpc.example:8545");
  });

  it("takes the web app's directory (from the file's folder), public RPC and explorer from the app section, and refuses bad URLs", function () {
    const config = parse({ ...valid(), app: { dir: "web/build", publicRpcUrl: "https://rpc.example.org/v2/abc", explorerUrl: "https://explorer.example.org" } });
    expect(config.app).to.deep.equal({ dir: path.join(dir, "web/build"), publicRpcUrl: "https://rpc.example.org/v2/abc", explorerUrl: "https://explorer.example.org" });
    expect(problems({ ...valid(), app: { publicRpcUrl: "not a url" } })).to.contain("app.publicRpcUrl");
    expect(problems({ ...valid(), app: { explorerUrl: "etherscan" } })).to.contain("app.explorerUrl");
    expect(problems({ ...valid(), limits: { sessionLifetimeSeconds: 0 } })).to.contain("limits.sessionLifetimeSeconds");
  });

  it("accepts tollgate.config.example.json as shipped, web app section included", function () {
    const root = path.resolve(__dirname, "..", "..");
    const example = JSON.parse(fs.readFileSync(path.join(root, "tollgate.config.example.json"), "utf8")) as Record<string, unknown>;
    const chain = example.chain as Record<string, unknown>;
    // The example names deployments/localhost.json, which only a deploy writes: point it at this test's file.
    const config = parseGatewayConfig({ ...example, chain: { ...chain, deploymentFile: path.join(dir, "deployment.json") } }, { TOLLGATE_GATEWAY_SIGNER_KEY: SIGNER, OPENAI_API_KEY: "k" }, root, "tollgate.config.example.json");
    expect(config.app).to.deep.equal({ dir: path.join(root, "app", "dist"), publicRpcUrl: "http://127.0.0.1:8545", explorerUrl: null });
    expect(config.limits.sessionLifetimeSeconds).to.equal(43_200);
  });

  it("stops the gateway process with the message and exit code 1", function () {
    const file = path.join(dir, "broken.json");
    fs.writeFileSync(file, JSON.stringify({ ...valid(), providerId: "one" }));
    const result = spawnSync(process.execPath, ["-r", "ts-node/register/transpile-only", "server/gateway/main.ts"], {
      env: { ...process.env, TOLLGATE_CONFIG: file, TOLLGATE_GATEWAY_SIGNER_KEY: SIGNER, PAID_KEY: "k" },
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(result.status).to.equal(1);
    expect(result.stderr).to.contain("invalid configuration");
    expect(result.stderr).to.contain("providerId");
    expect(result.stderr).not.to.match(/\n\s+at /); // a message, not a stack trace
  });
});
