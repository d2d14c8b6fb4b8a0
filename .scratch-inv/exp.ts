import { ethers } from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import { deployMarketplace, USD, WITHDRAWAL_DELAY } from "../test/helpers/fixtures";
async function main() {
  const m = await deployMarketplace();
  const b = m.buyers[0];
  await m.tollgate.connect(b).deposit(b.address, USD(10));
  const r = await (await m.tollgate.connect(b).requestWithdrawal(USD(5))).wait();
  const blk = await ethers.provider.getBlock(r!.blockNumber);
  const acct = await m.tollgate.accountOf(b.address);
  console.log("req ts", blk!.timestamp, "withdrawableAt", acct.withdrawableAt);
  const latestBefore = await time.latestBlock();
  // set next timestamp to withdrawableAt - 1: should revert
  await time.setNextBlockTimestamp(Number(acct.withdrawableAt) - 1);
  try { await m.tollgate.connect(b).withdraw(); console.log("withdraw at -1 succeeded?!"); } catch (e: any) { console.log("reverted:", e.message.slice(0, 150)); }
  console.log("blocks mined by revert:", (await time.latestBlock()) - latestBefore);
  // does the next-ts setting persist? mine a tx
  const tx = await m.tollgate.connect(b).deposit(b.address, 1n);
  const rc = await tx.wait();
  console.log("next block ts", (await ethers.provider.getBlock(rc!.blockNumber))!.timestamp);
  await time.setNextBlockTimestamp(Number(acct.withdrawableAt));
  try { const rc2 = await (await m.tollgate.connect(b).withdraw()).wait(); console.log("withdraw at exact ok, ts", (await ethers.provider.getBlock(rc2!.blockNumber))!.timestamp); } catch (e: any) { console.log("reverted at exact:", e.message.slice(0, 150)); }
}
main().catch((e) => { console.error(e); process.exit(1); });
