/**
 * Signs the EIP-712 `UsageReceipt` handed to the buyer with every response.
 *
 * This runs once per metered call, so it avoids viem's generic typed-data walker: the receipt has only
 * static fields, so its struct hash is keccak256 over fixed 32-byte words (the typehash, then one per
 * field of the EIP-712 table), and the domain separator is computed once. The signature comes from
 * libsecp256k1 (the `secp256k1` package's prebuilt binding, with a pure-JS fallback), about ten times faster
 * than a JS signer. `test/gateway/receipt-signer.test.ts` checks the output against viem's `hashStruct` and
 * `recoverTypedDataAddress`, so the fast path cannot drift.
 */
import secp256k1 from "secp256k1";
import { getTypesForEIP712Domain, hashDomain, hexToBytes, keccak256, toBytes, type Address, type Hex } from "viem";
import { privateKeyToAddress } from "viem/accounts";
import { USAGE_RECEIPT_TYPE, tollgateDomain, usageReceiptTypes, type UsageReceipt } from "../../chain/eip712";
import { hexOfBytes, keccak256Bytes } from "../../chain/keccak";

const RECEIPT_TYPEHASH = hexToBytes(keccak256(toBytes(USAGE_RECEIPT_TYPE)));

/**
 * How each field of the receipt table becomes its 32-byte word (word 0 is the typehash), built once from the
 * EIP-712 table so the fast path follows the same field list as viem. Only the static types the receipt
 * uses are handled; a table with any other type fails here, at load, rather than hashing it wrongly.
 */
const FIELD_WRITERS = usageReceiptTypes.UsageReceipt.map(({ name, type }, index) => {
  const offset = (index + 1) * 32;
  if (type === "address") return (target: Uint8Array, receipt: UsageReceipt) => target.set(hexToBytes(receipt[name] as Hex), offset + 12);
  if (type === "bytes32") return (target: Uint8Array, receipt: UsageReceipt) => target.set(hexToBytes(receipt[name] as Hex), offset);
  if (/^uint\d+$/.test(type)) return (target: Uint8Array, receipt: UsageReceipt) => writeUint(target, index + 1, receipt[name] as bigint | number);
  throw new Error(`receipt-signer: no fast encoding for ${type} ${name}`);
});
const WORDS = FIELD_WRITERS.length + 1;

export interface SignedUsageReceipt {
  receipt: UsageReceipt;
  /** The EIP-712 struct hash: the leaf this receipt becomes in its batch's content root. */
  receiptHash: Hex;
  /** 65-byte r ‖ s ‖ v signature over the EIP-712 digest. */
  signature: Hex;
}

function writeUint(target: Uint8Array, word: number, value: bigint | number): void {
  let remaining = BigInt(value);
  for (let offset = word * 32 + 31; remaining > 0n; offset--) {
    target[offset] = Number(remaining & 0xffn);
    remaining >>= 8n;
  }
}

export class ReceiptSigner {
  readonly address: Address;
  private readonly privateKey: Uint8Array;
  private readonly domainSeparator: Uint8Array;

  constructor(privateKey: Hex, chainId: number | bigint, tollgate: Address) {
    this.privateKey = hexToBytes(privateKey);
    this.address = privateKeyToAddress(privateKey);
    const domain = tollgateDomain(chainId, tollgate);
    this.domainSeparator = hexToBytes(
      hashDomain({
        domain: { ...domain, chainId: BigInt(chainId) } as never,
        types: { EIP712Domain: getTypesForEIP712Domain({ domain }) },
      }),
    );
  }

  /** The struct hash of a receipt, as `UsageTypes.hashReceipt` computes it on-chain. */
  receiptHash(receipt: UsageReceipt): Uint8Array {
    const encoded = new Uint8Array(32 * WORDS);
    encoded.set(RECEIPT_TYPEHASH, 0);
    for (const write of FIELD_WRITERS) write(encoded, receipt);
    return keccak256Bytes(encoded);
  }

  sign(receipt: UsageReceipt): SignedUsageReceipt {
    const structHash = this.receiptHash(receipt);
    const message = new Uint8Array(66);
    message[0] = 0x19;
    message[1] = 0x01;
    message.set(this.domainSeparator, 2);
    message.set(structHash, 34);
    const digest = keccak256Bytes(message);
    // libsecp256k1 always returns the low-s form, which the contract's ECDSA.recover requires.
    const { signature, recid } = secp256k1.ecdsaSign(digest, this.privateKey);
    const full = new Uint8Array(65);
    full.set(signature, 0);
    full[64] = 27 + recid;
    return { receipt, receiptHash: hexOfBytes(structHash), signature: hexOfBytes(full) };
  }
}
