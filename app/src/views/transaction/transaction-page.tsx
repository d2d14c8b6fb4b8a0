/**
 * One transaction as the chain recorded it, for chains without an explorer (the local marketplace): status,
 * block, gas, who sent it, and the Tollgate events it emitted, decoded.
 */
import { decodeEventLog, isHash, type Hash } from "viem";
import { testUsdAbi, tollgateAbi, tollgateCreditsAbi } from "../../../../server/chain/abis";
import { useApp } from "../../app-state";
import { Card } from "../../components/card";
import { LoadError } from "../../components/load-error";
import { ShortHex } from "../../components/short-hex";
import { formatTime } from "../../lib/time";
import { useLoad } from "../../lib/use-load";

const ABIS = [tollgateAbi, tollgateCreditsAbi, testUsdAbi] as const;

function decode(log: { data: `0x${string}`; topics: [`0x${string}`, ...`0x${string}`[]] | [] }) {
  for (const abi of ABIS) {
    try {
      const event = decodeEventLog({ abi, data: log.data, topics: log.topics });
      return { name: event.eventName as string, args: event.args as Record<string, unknown> };
    } catch {
      // not this contract's event
    }
  }
  return undefined;
}

const show = (value: unknown): string => (typeof value === "bigint" ? value.toString() : Array.isArray(value) ? `[${value.map(show).join(", ")}]` : typeof value === "string" && value.length > 80 ? `${value.slice(0, 80)}…` : String(value));

export function TransactionPage({ hash }: { hash?: string }) {
  const { publicClient } = useApp();
  const valid = hash !== undefined && isHash(hash);
  const loaded = useLoad(
    valid
      ? async () => {
          const receipt = await publicClient.getTransactionReceipt({ hash: hash as Hash });
          const block = await publicClient.getBlock({ blockNumber: receipt.blockNumber });
          return { receipt, block };
        }
      : undefined,
    [hash],
  );
  if (!valid) return <p className="empty">That is not a transaction hash.</p>;
  return (
    <Card title="Transaction">
      {loaded.error !== undefined && <LoadError error={loaded.error} what="the transaction" retry={loaded.reload} />}
      {loaded.loading && !loaded.data && <p aria-busy="true">Loading the transaction…</p>}
      {loaded.data && (
        <>
          <dl className="facts">
            <dt>Hash</dt>
            <dd className="mono break">{hash}</dd>
            <dt>Status</dt>
            <dd>{loaded.data.receipt.status === "success" ? "Confirmed" : "Reverted"}</dd>
            <dt>Block</dt>
            <dd>
              {loaded.data.receipt.blockNumber.toString()} at {formatTime(loaded.data.block.timestamp)}
            </dd>
            <dt>From</dt>
            <dd>
              <ShortHex value={loaded.data.receipt.from} />
            </dd>
            <dt>Gas used</dt>
            <dd>{loaded.data.receipt.gasUsed.toLocaleString()}</dd>
          </dl>
          <h3>Events</h3>
          <ol className="events">
            {loaded.data.receipt.logs.map((log) => {
              const event = decode(log as never);
              return (
                <li key={log.logIndex}>
                  <strong>{event?.name ?? "Unknown event"}</strong>{" "}
                  {event && (
                    <span className="mono small">
                      {Object.entries(event.args)
                        .map(([name, value]) => `${name}: ${show(value)}`)
                        .join(", ")}
                    </span>
                  )}
                </li>
              );
            })}
          </ol>
        </>
      )}
    </Card>
  );
}
