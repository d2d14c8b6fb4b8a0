/**
 * The logs of a history decoded with the ABIs the auditor trusts: Tollgate's for logs of Tollgate, the
 * ERC-1155's for the credits token, the subscriptions satellite's for it (where the deployment has one), ERC-20 `Transfer` for the payment token. A log of an address the history does not name, or whose topic no ABI knows, decodes to
 * `undefined` and becomes a finding, never an exception.
 */
import { decodeEventLog, getAddress, toEventSelector, type AbiEvent, type Address, type DecodeEventLogReturnType, type Hex } from "viem";
import { testUsdAbi, tollgateAbi, tollgateCreditsAbi, tollgateSubscriptionsAbi } from "../../../server/chain/abis";
import type { ChainHistory, HistoryLog } from "../chain-history";

const auditAbi = [...tollgateAbi, ...tollgateCreditsAbi, ...tollgateSubscriptionsAbi, ...testUsdAbi] as const;

export type AuditEvent = DecodeEventLogReturnType<typeof auditAbi>;

export type Emitter = "tollgate" | "credits" | "subscriptions" | "token";

function eventsBySelector(abi: readonly unknown[], names?: readonly string[]): Map<Hex, readonly [AbiEvent]> {
  const bySelector = new Map<Hex, readonly [AbiEvent]>();
  for (const item of abi as readonly { type: string }[]) {
    if (item.type !== "event") continue;
    const event = item as AbiEvent;
    if (names && !names.includes(event.name)) continue;
    bySelector.set(toEventSelector(event), [event]);
  }
  return bySelector;
}

export interface LogDecoder {
  /** The decoded event and which of the contracts emitted it, or undefined (with why) when it cannot be decoded. */
  decode(log: HistoryLog): { emitter: Emitter; event: AuditEvent } | { emitter?: Emitter; error: string };
}

export function logDecoder(history: Pick<ChainHistory, "tollgate" | "credits" | "paymentToken" | "subscriptions">): LogDecoder {
  const byEmitter = new Map<Address, { emitter: Emitter; events: Map<Hex, readonly [AbiEvent]> }>([
    [getAddress(history.tollgate), { emitter: "tollgate", events: eventsBySelector(tollgateAbi) }],
    [getAddress(history.credits), { emitter: "credits", events: eventsBySelector(tollgateCreditsAbi) }],
    [getAddress(history.paymentToken), { emitter: "token", events: eventsBySelector(testUsdAbi, ["Transfer"]) }],
  ]);
  if (history.subscriptions) byEmitter.set(getAddress(history.subscriptions), { emitter: "subscriptions", events: eventsBySelector(tollgateSubscriptionsAbi) });
  const addressCache = new Map<string, Address>();
  return {
    decode(log) {
      let address = addressCache.get(log.address);
      if (!address) {
        address = getAddress(log.address);
        addressCache.set(log.address, address);
      }
      const source = byEmitter.get(address);
      if (!source) return { error: `a log of ${address}, which is none of Tollgate, its credits token, its subscriptions contract or its payment token` };
      const abi = log.topics[0] ? source.events.get(log.topics[0]) : undefined;
      if (!abi) return { emitter: source.emitter, error: `an event with topic ${log.topics[0] ?? "(none)"} that the ${source.emitter} ABI does not know` };
      try {
        const event = decodeEventLog({ abi, topics: log.topics as [Hex, ...Hex[]], data: log.data, strict: true }) as AuditEvent;
        return { emitter: source.emitter, event };
      } catch (error) {
        return { emitter: source.emitter, error: `${abi[0].name} does not decode: ${(error as Error).message.split("\n")[0]}` };
      }
    },
  };
}
