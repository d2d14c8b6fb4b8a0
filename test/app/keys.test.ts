/**
 * The API keys page in Chromium with the injected test wallet, against the local marketplace: a key created
 * by the wallet's signature, its secret read off the page and used through the real `openai` client, the
 * list read through a read session, revoking (after confirmation) making the gateway refuse the same secret;
 * a rejected signature and an unreachable gateway each said plainly, with nothing created. The gateway's
 * store is checked from Node after each step, not only the page's text.
 */
import { expect } from "chai";
import OpenAI from "openai";
import { parseUnits, type Address } from "viem";
import { deposit } from "../../client";
import { startAppMarket, type AppMarket } from "../helpers/browser/app-market";

const NARROW = { width: 390, height: 844 };

describe("API keys page (#/keys)", function () {
  this.timeout(240_000);
  let market: AppMarket;
  const keysOf = (buyer: Address) => market.run.gateway.ctx.store.listApiKeys(buyer);

  before(async function () {
    market = await startAppMarket();
  });
  after(async () => market?.close());

  it("creates a key by signature, shows its secret once with snippets that work, lists it and revokes it: the same secret then gets 401", async function () {
    const { page, wallet, account, key } = await market.openApp({ path: "#/keys", viewport: NARROW });
    const model = market.run.models[0].name;
    await deposit(await market.run.as(key), { amount: parseUnits("20", market.run.token.decimals) });

    await page.getByRole("checkbox", { name: new RegExp(model) }).waitFor();
    await market.expectNoA11yViolations(page, "keys: the create form");
    await market.expectFitsWidth(page);

    // A tag the gateway would refuse is caught before the wallet is asked.
    await page.getByLabel("Tags (optional)").fill("not a tag");
    await page.getByRole("button", { name: "Sign and create the key" }).click();
    await page.getByText(/“not” is not a tag/).waitFor();
    expect(wallet.requests.filter((request) => request.method === "eth_signTypedData_v4"), "no signature asked").to.deep.equal([]);
    expect(keysOf(account.address)).to.have.length(0);

    await page.getByLabel("Label").fill("search bot");
    await page.getByLabel(/Spend cap/).fill("5");
    await page.getByRole("checkbox", { name: new RegExp(model) }).check();
    await page.getByLabel("Tags (optional)").fill("team:search, workflow:nightly");
    await page.getByRole("button", { name: "Sign and create the key" }).click();

    const secretBox = page.getByLabel("API key secret");
    await secretBox.waitFor();
    const secret = (await secretBox.textContent())!.trim();
    expect(secret).to.match(/^tg_/);
    await page.getByText("Copy this key now: it will not be shown again.").waitFor();
    const baseUrl = `${new URL(page.url()).origin}/v1`;
    for (const example of ["Node (openai) example", "Python (openai) example", "curl example"]) {
      const code = await page.getByLabel(example, { exact: true }).textContent();
      expect(code, example).to.include(baseUrl).and.to.include(secret).and.to.include(model);
    }
    const [stored] = keysOf(account.address);
    expect(stored, "the gateway stored the key").to.not.equal(undefined);
    expect(stored.label).to.equal("search bot");
    expect(stored.spendCap).to.equal(parseUnits("5", market.run.token.decimals));
    expect(stored.models).to.deep.equal([model]);
    expect(stored.tags).to.deep.equal(["team:search", "workflow:nightly"]);
    expect(stored.revokedAt).to.equal(null);
    await market.expectNoA11yViolations(page, "keys: the secret shown once");
    await market.expectFitsWidth(page);

    // The secret from the page works with the real openai client, for the model it allows.
    const completion = await market.run.openai(secret).chat.completions.create({ model, messages: [{ role: "user", content: "Hello" }], max_tokens: 16 });
    expect(completion.choices[0].message.content).to.be.a("string");

    // The list, through a read session (one signature), shows the key as active with what it spent.
    await page.getByRole("button", { name: "Sign in to the gateway" }).click();
    const row = page.getByRole("row", { name: new RegExp(stored.id) });
    await row.waitFor();
    expect(await row.textContent()).to.include("search bot").and.to.include("team:search").and.to.include("active");
    await market.expectNoA11yViolations(page, "keys: the key list");

    // Revoke: a confirmation first, then the wallet's signature.
    await row.getByRole("button", { name: /Revoke key/ }).click();
    const dialog = page.getByRole("alertdialog");
    await dialog.getByText(/Calls with this key fail from the moment it is revoked/).waitFor();
    await market.expectNoA11yViolations(page, "keys: revoke confirmation");
    expect(keysOf(account.address)[0].revokedAt, "nothing revoked before confirming").to.equal(null);
    await dialog.getByRole("button", { name: "Yes, revoke the key" }).click();
    await page.getByText(/is revoked: the gateway refuses it from now on/).waitFor();
    await page.getByRole("row", { name: new RegExp(`${stored.id}.*revoked`) }).waitFor();
    expect(keysOf(account.address)[0].revokedAt).to.be.a("number");

    const refused = await market.run
      .openai(secret)
      .chat.completions.create({ model, messages: [{ role: "user", content: "Hello again" }], max_tokens: 16 })
      .catch((error: unknown) => error);
    expect(refused).to.be.instanceOf(OpenAI.APIError);
    expect((refused as InstanceType<typeof OpenAI.APIError>).status).to.equal(401);
    market.expectNoConsoleErrors(page);
  });

  it("a signature rejected in the wallet creates nothing and says so", async function () {
    const { page, wallet, account } = await market.openApp({ path: "#/keys" });
    await page.getByLabel("Label").fill("never made");
    wallet.rejectNext("eth_signTypedData_v4");
    await page.getByRole("button", { name: "Sign and create the key" }).click();
    await page.getByRole("alert").getByText("You rejected the request in your wallet.").waitFor();
    expect(keysOf(account.address), "no key at the gateway").to.deep.equal([]);
    expect(await page.getByLabel("API key secret").count()).to.equal(0);
    await market.expectNoA11yViolations(page, "keys: signature rejected");
    market.expectNoConsoleErrors(page);
  });

  it("an unreachable gateway is said plainly, and nothing is created", async function () {
    const { page, account } = await market.openApp({ path: "#/keys" });
    await page.route("**/v1/**", (route) => route.abort());
    await page.reload();
    await page.getByText(/Could not load the models on sale\. Cannot reach the Tollgate gateway\./).waitFor();
    await page.getByLabel("Label").fill("offline");
    await page.getByRole("button", { name: "Sign and create the key" }).click();
    await page.getByRole("alert").filter({ hasText: "Cannot reach the Tollgate gateway." }).last().waitFor();
    expect(keysOf(account.address)).to.deep.equal([]);
    await market.expectNoA11yViolations(page, "keys: gateway unreachable");
  });
});
