import { ethers } from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import { keccak256, toHex, type Address } from "viem";
import { privateKeyToAccount, generatePrivateKey } from "viem/accounts";
import { deployMarketplace, USD } from "../test/helpers/fixtures";
import { buildSignedBatch } from "../test/helpers/batches";
async function trace(hash: string) {
  const t = await ethers.provider.send("debug_traceTransaction", [hash, { disableStorage: true, disableMemory: true, disableStack: true }]);
  const byOp: Record<string, { n: number; gas: number }> = {};
  for (const l of t.structLogs) { const o = (byOp[l.op] ??= { n: 0, gas: 0 }); o.n++; o.gas += l.gasCost; }
  return byOp;
}
async function main() {
  const m = await deployMarketplace();
  const buyers: Address[] = [];
  await m.token.mint(m.owner.address, USD(1e6)); await m.token.approve(await m.tollgate.getAddress(), ethers.MaxUint256);
  for (let i = 0; i < 100; i++) { const b = privateKeyToAccount(generatePrivateKey()).address; await m.tollgate.deposit(b, USD(100)); buyers.push(b); }
  await time.increase(3600);
  let seq = 0n; const res: any[] = [];
  for (const nb of [1, 100, 1, 100]) {
    const n = 100;
    const latest = (await ethers.provider.getBlock("latest"))!.timestamp;
    const records = Array.from({ length: n }, (_, i) => ({ sequence: seq + BigInt(i), buyer: buyers[i % nb], modelId: 1, priceEpoch: 0, inputTokens: 1000, cachedInputTokens: 0, outputTokens: 300, servedAt: latest - 100, receiptHash: keccak256(toHex(i)) }));
    const { batch, signature } = await buildSignedBatch(m.tollgate, m.gateway, records);
    const tx = await m.tollgate.settleBatch(batch, signature);
    const r = await tx.wait();
    console.log(nb, "gas", r!.gasUsed);
    seq += BigInt(n); res.push(await trace(tx.hash));
  }
  const a = res[2], b = res[3];
  const diff = Object.keys(b).map((k) => [k, (b[k].n - (a[k]?.n ?? 0)) / 99, (b[k].gas - (a[k]?.gas ?? 0)) / 99] as const).sort((x, y) => y[2] - x[2]).slice(0, 30);
  console.log(diff.map((d) => `${d[0]} ${d[1].toFixed(1)} ${d[2].toFixed(0)}`).join(" | "));
}
main();
