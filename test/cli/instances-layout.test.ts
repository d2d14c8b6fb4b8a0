/**
 * The identity of each of N gateway instances: key derivation (deterministic, distinct per index, pinned against
 * an independent encoder), listed keys and their refusals, per-instance store files and fleet ids, and the
 * launcher's refusals (N > 1 without a shared store, a signer that may not sign for the provider).
 */
import { expect } from "chai";
import { ethers } from "ethers";
import { generatePrivateKey, privateKeyToAddress } from "viem/accounts";
import type { Hex } from "viem";
import { deriveInstanceSignerKey, INSTANCE_KEY_LABEL, instanceSignerKeys } from "../../server/gateway-instances/instance-keys";
import { instanceCountFromEnv, instanceIdOf, instanceStorePath, parseInstanceCount, planInstances } from "../../server/gateway-instances/instance-layout";
import { RestartBackoff } from "../../server/gateway-instances/restart-backoff";
import { requireAuthorizedSigners, requireSharedStore, signerProblem, type SignerStanding } from "../../server/gateway-instances/launch-checks";
import { configProblems } from "../helpers/config-problems";

const BASE = `0x${"ab".repeat(32)}` as Hex;

const configError = configProblems;

describe("gateway instances: keys, stores and ids", function () {
  it("derives the same key for the same base and index, a different one per index, and none equal to the base", () => {
    const keys = Array.from({ length: 8 }, (_, i) => deriveInstanceSignerKey(BASE, i + 1));
    expect(Array.from({ length: 8 }, (_, i) => deriveInstanceSignerKey(BASE, i + 1))).to.deep.equal(keys);
    expect(new Set([BASE, ...keys]).size).to.equal(9);
    const other = generatePrivateKey();
    expect(deriveInstanceSignerKey(other, 1)).to.not.equal(keys[0]);
  });

  it("derivation is keccak256(label ‖ base ‖ uint32 index), as an independent encoder computes it, and pinned", () => {
    for (const index of [1, 2, 3, 64]) {
      const expected = ethers.solidityPackedKeccak256(["string", "bytes32", "uint32"], [INSTANCE_KEY_LABEL, BASE, index]);
      expect(deriveInstanceSignerKey(BASE, index)).to.equal(expected);
    }
    // Pinned: changing the derivation would move every fleet's instances to keys their provider never authorized.
    expect(privateKeyToAddress(deriveInstanceSignerKey(BASE, 1))).to.equal("0x26be7E2138c875a57BfFdC2091DA0f2a79D29C97");
    expect(privateKeyToAddress(deriveInstanceSignerKey(BASE, 2))).to.equal("0x6f36091586406427F6300f2E1E5c41F71152c691");
  });

  it("refuses index 0 and a malformed base key", () => {
    expect(configError(() => deriveInstanceSignerKey(BASE, 0))).to.contain("instance index 0");
    expect(configError(() => deriveInstanceSignerKey("0x1234" as Hex, 1))).to.contain("32-byte");
  });

  it("takes listed keys in order, and refuses a wrong count, a repeat, a malformed entry (unechoed) or both variables set", () => {
    const [a, b] = [generatePrivateKey(), generatePrivateKey()];
    expect(instanceSignerKeys({ TOLLGATE_GATEWAY_SIGNER_KEYS: `${a}, ${b}` }, 2)).to.deep.equal({ keys: [a, b], source: "listed" });
    expect(instanceSignerKeys({ TOLLGATE_GATEWAY_SIGNER_KEY: BASE }, 2)).to.deep.equal({ keys: [deriveInstanceSignerKey(BASE, 1), deriveInstanceSignerKey(BASE, 2)], source: "derived" });
    expect(configError(() => instanceSignerKeys({ TOLLGATE_GATEWAY_SIGNER_KEYS: `${a},${b}` }, 3))).to.contain("lists 2 key(s) but 3 instance(s)");
    expect(configError(() => instanceSignerKeys({ TOLLGATE_GATEWAY_SIGNER_KEYS: `${a},${a}` }, 2))).to.contain("one key twice");
    const bad = configError(() => instanceSignerKeys({ TOLLGATE_GATEWAY_SIGNER_KEYS: `${a},0xdeadbeef` }, 2));
    expect(bad).to.contain("entries 2 are not");
    expect(bad).to.not.contain(a.slice(2));
    expect(configError(() => instanceSignerKeys({ TOLLGATE_GATEWAY_SIGNER_KEYS: a, TOLLGATE_GATEWAY_SIGNER_KEY: BASE }, 1))).to.contain("both");
    expect(configError(() => instanceSignerKeys({}, 2))).to.contain("TOLLGATE_GATEWAY_SIGNER_KEY");
  });

  it("gives every instance its own store file beside the configured one, the plain name left to the single gateway", () => {
    expect(instanceStorePath("/data/usage.sqlite", 1)).to.equal("/data/usage.instance-1.sqlite");
    expect(instanceStorePath("/data/usage.sqlite", 12)).to.equal("/data/usage.instance-12.sqlite");
    expect(instanceStorePath("/data/usage", 2)).to.equal("/data/usage.instance-2");
    const plan = planInstances({ env: { TOLLGATE_GATEWAY_SIGNER_KEY: BASE }, count: 3, storePath: "/data/usage.sqlite", instanceIdBase: "host-a" });
    expect(plan.instances.map((i) => [i.index, i.storePath, i.instanceId, i.signer])).to.deep.equal(
      [1, 2, 3].map((index) => [index, `/data/usage.instance-${index}.sqlite`, `host-a-${index}`, privateKeyToAddress(deriveInstanceSignerKey(BASE, index))]),
    );
    expect(instanceIdOf(undefined, 2, plan.instances[1].signer)).to.equal(plan.instances[1].signer);
    expect(configError(() => instanceIdOf("x".repeat(63), 10, plan.instances[0].signer))).to.contain("shorten it");
  });

  it("parses the instance count, refusing 0, fractions, garbage and more than 64", () => {
    expect(parseInstanceCount("3", "--instances")).to.equal(3);
    expect(instanceCountFromEnv({})).to.equal(1);
    expect(instanceCountFromEnv({ TOLLGATE_GATEWAY_INSTANCES: "4" })).to.equal(4);
    for (const text of ["0", "1.5", "two", "65", "-1", ""]) expect(configError(() => parseInstanceCount(text, "--instances"))).to.contain("--instances");
  });

  it("refuses N > 1 instances without a fleet section, explaining the N-fold overspend and what to add", () => {
    const message = configError(() => requireSharedStore(3, {}));
    expect(message).to.contain("up to 3x its balance");
    expect(message).to.contain('"fleet": { "redisUrl"');
    expect(() => requireSharedStore(1, {})).to.not.throw();
    expect(() => requireSharedStore(3, { fleet: { redisUrl: "redis://127.0.0.1:6379", leaseMs: 30_000, timeoutMs: 1_000 } })).to.not.throw();
  });

  it("names each instance signer that may not sign for the provider, why, and the command that authorizes them", () => {
    const { instances } = planInstances({ env: { TOLLGATE_GATEWAY_SIGNER_KEY: BASE }, count: 4, storePath: "/d/u.sqlite" });
    const standing = (i: number, providerId: number, authorized: boolean, compromised = false): SignerStanding => ({ instance: instances[i], providerId, authorized, compromised, nextSequence: 0n });
    const standings = [standing(0, 1, true), standing(1, 0, false), standing(2, 1, false), standing(3, 2, true)];
    const message = configError(() => requireAuthorizedSigners(standings, 1, 4));
    expect(message).to.contain("3 of 4 instance signer(s) may not sign for provider 1");
    expect(message).to.contain(`instance 2 (signer ${instances[1].signer}): never authorized`);
    expect(message).to.contain(`instance 3 (signer ${instances[2].signer}): revoked`);
    expect(message).to.contain(`instance 4 (signer ${instances[3].signer}): authorized for provider 2, not 1`);
    expect(message).to.not.contain(`instance 1 (`);
    expect(message).to.contain("`tollgate operator authorize-signers --instances 4 --provider 1`");
    expect(signerProblem({ providerId: 1, authorized: false, compromised: true, nextSequence: 5n }, 1)).to.contain("compromised");
    expect(() => requireAuthorizedSigners([standing(0, 1, true)], 1, 1)).to.not.throw();
  });

  it("restarts a crash-looping instance ever later, up to the cap, and promptly again once it stayed up", () => {
    const backoff = new RestartBackoff({ initialMs: 500, maxMs: 4_000, stableMs: 30_000 });
    expect([100, 100, 100, 100, 100].map((uptime) => backoff.next(uptime))).to.deep.equal([500, 1_000, 2_000, 4_000, 4_000]);
    expect(backoff.next(60_000)).to.equal(500);
    expect(backoff.next(10)).to.equal(1_000);
  });
});
