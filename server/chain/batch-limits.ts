/**
 * What one `settleBatch` can carry: the limits of the packed batch encoding (laid out in
 * `IUsageSettlement.sol`, enforced by `UsageSettlement.sol`), in one place for the encoder that packs a
 * batch, the oracle that plans one, and the store and gateway that refuse a record no batch could hold.
 * Browser-safe (no Node built-ins), so client/ code may use it too. `test/chain/batch-limits.test.ts`
 * pins these numbers to the Solidity source.
 */

/** Bytes per entry of each section: a buyer (address, credit plan id), a model epoch (model id, epoch), a record. */
export const BUYER_ENTRY_BYTES = 24;
export const MODEL_ENTRY_BYTES = 8;
export const RECORD_BYTES = 18;

/** A record names its buyer by a 2-byte index into the buyers section. */
export const MAX_BATCH_BUYERS = 2 ** 16;
/** A record names its model and price epoch by a 1-byte index into the models section. */
export const MAX_BATCH_MODEL_EPOCHS = 2 ** 8;
/** The contract's `MAX_RECORDS`: the records section holds at most 2^24 entries. */
export const MAX_BATCH_RECORDS = 2 ** 24;
/** A record stores its serving time as a 3-byte offset from the batch's `baseTime`, its earliest. */
export const MAX_SERVED_OFFSET = 2 ** 24 - 1;

/** Token counts, model ids, price epochs and serving times are uint32 in a record and in a receipt. */
export const MAX_UINT32 = 2 ** 32 - 1;

/** Whether `value` fits a uint32 field: an integer in [0, 2^32). */
export function isUint32(value: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= MAX_UINT32;
}
