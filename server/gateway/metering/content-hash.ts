/**
 * What a receipt commits to about content, without revealing it: keccak256(salt ‖ requestHash ‖
 * responseHash). The request and response hashes are of the exact bytes exchanged; the salt is fresh per
 * call, so nobody can confirm a guessed short prompt against the on-chain hash. The buyer gets the salt
 * and both hashes with the receipt and can recompute everything from the bytes it sent and received.
 */
import { randomFillSync } from "node:crypto";
import { concatBytes, hexToBytes, type Hex } from "viem";
import { hexOfBytes, keccak256Bytes } from "../../chain/keccak";

export interface ContentCommitment {
  salt: Hex;
  requestHash: Hex;
  responseHash: Hex;
  contentHash: Hex;
}

/**
 * Salts come from a pool refilled 128 at a time: one CSPRNG call per salt cost more (a syscall each) than
 * the three hashes of a small call together.
 */
const SALT_BYTES = 32;
const saltPool = Buffer.alloc(SALT_BYTES * 128);
let saltOffset = saltPool.length;

function freshSalt(): Uint8Array {
  if (saltOffset === saltPool.length) {
    randomFillSync(saltPool);
    saltOffset = 0;
  }
  // A copy: the pool's bytes are overwritten at the next refill.
  const salt = Uint8Array.prototype.slice.call(saltPool, saltOffset, saltOffset + SALT_BYTES);
  saltOffset += SALT_BYTES;
  return salt;
}

export function commitContent(request: Uint8Array, response: Uint8Array): ContentCommitment {
  const salt = freshSalt();
  const requestHash = keccak256Bytes(request);
  const responseHash = keccak256Bytes(response);
  return {
    salt: hexOfBytes(salt),
    requestHash: hexOfBytes(requestHash),
    responseHash: hexOfBytes(responseHash),
    contentHash: hexOfBytes(keccak256Bytes(concatBytes([salt, requestHash, responseHash]))),
  };
}

/** The check a buyer runs: does the receipt's content hash match the bytes it exchanged? */
export function contentHashOf(salt: Hex, requestHash: Hex, responseHash: Hex): Hex {
  return hexOfBytes(keccak256Bytes(concatBytes([hexToBytes(salt), hexToBytes(requestHash), hexToBytes(responseHash)])));
}
