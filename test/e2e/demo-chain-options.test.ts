/**
 * The demo on an external chain: `--rpc-url` and `--deployer-key` (or TOLLGATE_RPC_URL and TOLLGATE_DEPLOYER_KEY)
 * parsed with every problem named at once, and a chain that cannot be used refused with what to fix before
 * anything is deployed.
 */
import { expect } from "chai";
import { connectExternalChain } from "../../scripts/lib/external-chain";
import { MarketplaceSetupError } from "../../scripts/lib/local-marketplace";
import { parseDemoOptions } from "../../scripts/lib/marketplace-options";

const KEY = `0x${"11".repeat(32)}` as const;

function problemsOf(argv: string[], env: NodeJS.ProcessEnv = {}): string {
  try {
    parseDemoOptions(argv, env);
  } catch (error) {
    expect(error).to.be.instanceOf(MarketplaceSetupError);
    return (error as Error).message;
  }
  return expect.fail("the options were accepted");
}

describe("demo: an external chain by RPC URL and deployer key", function () {
  it("takes the URL and the key from flags or from the environment", function () {
    expect(parseDemoOptions(["--rpc-url", "http://127.0.0.1:9545", "--deployer-key", KEY], {})).to.include({ rpcUrl: "http://127.0.0.1:9545", deployerKey: KEY });
    expect(parseDemoOptions([], { TOLLGATE_RPC_URL: "http://node:8545", TOLLGATE_DEPLOYER_KEY: KEY })).to.include({ rpcUrl: "http://node:8545", deployerKey: KEY });
    expect(parseDemoOptions([], {})).to.include({ rpcUrl: undefined, deployerKey: undefined });
  });

  it("refuses a URL without a key, a key that is not 32 bytes, and a port to serve on alongside a URL, all at once", function () {
    const message = problemsOf(["--rpc-url", "http://127.0.0.1:9545", "--rpc-port", "8545"]);
    expect(message).to.contain("--rpc-url (TOLLGATE_RPC_URL) needs --deployer-key");
    expect(message).to.contain("--rpc-port serves the in-process chain");
    expect(problemsOf(["--rpc-url", "http://127.0.0.1:9545", "--deployer-key", "0x1234"])).to.contain("--deployer-key (TOLLGATE_DEPLOYER_KEY) must be a 32-byte private key");
  });

  it("says so when no node answers at the URL, or the URL is not http(s)", async function () {
    const unreachable = await connectExternalChain({ rpcUrl: "http://127.0.0.1:1", deployerKey: KEY }).catch((error: unknown) => error);
    expect(unreachable).to.be.instanceOf(MarketplaceSetupError);
    expect((unreachable as Error).message).to.contain("no JSON-RPC node answers at http://127.0.0.1:1");
    const websocket = await connectExternalChain({ rpcUrl: "ws://127.0.0.1:8546", deployerKey: KEY }).catch((error: unknown) => error);
    expect((websocket as Error).message).to.contain("must be an http(s) URL");
  });
});
