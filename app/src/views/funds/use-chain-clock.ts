/**
 * The chain's clock, ticking: withdrawals and limits are judged by block time, which a test chain may run
 * ahead of the wall clock, so the page counts from the chain time it last read, not from Date.now().
 */
import { useEffect, useState } from "react";

export function useChainClock(chainTimeAtRead: bigint | undefined): bigint | undefined {
  const [anchor, setAnchor] = useState<{ chain: bigint; wall: number }>();
  const [, setTick] = useState(0);
  useEffect(() => {
    if (chainTimeAtRead === undefined) return;
    setAnchor({ chain: chainTimeAtRead, wall: Date.now() });
    const timer = window.setInterval(() => setTick((tick) => tick + 1), 1000);
    return () => window.clearInterval(timer);
  }, [chainTimeAtRead]);
  if (!anchor) return chainTimeAtRead;
  return anchor.chain + BigInt(Math.floor((Date.now() - anchor.wall) / 1000));
}
