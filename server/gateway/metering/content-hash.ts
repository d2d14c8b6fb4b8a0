/**
 * What a receipt commits to about content, without revealing it: keccak256(salt ‖ requestHash ‖
 * responseHash). The request and response hashes are of the exact bytes exchanged; the salt is fresh per
 * call, so nobody can confirm a guessed short prompt against the on-chain hash. The buyer gets the salt
 * and both hashes with the receipt and can recompute everything from the bytes it sent and received.
 */
import { randomBytes } from "node:crypto";
import { bytesToHex, concatBytes, hexToBytes, type Hex } from "viem";
import { keccak256Bytes } from "../../chain/keccak";

export interface ContentCommitment {
  salt: Hex;
  requestHash: Hex;
  responseHash: Hex;
  contentHash: Hex;
}

export function commitContent(request: Uint8Array, response: Uint8Array): ContentCommitment {
  const salt = randomBytes(32);
  const requestHash = keccak256Bytes(request);
  const responseHash = keccak256Bytes(response);
  return {
    salt: bytesToHex(salt),
    requestHash: bytesToHex(requestHash),
    responseHash: bytesToHex(responseHash),
    contentHash: bytesToHex(keccak256Bytes(concatBytes([salt, requestHash, responseHash]))),
  };
}

/** The check a buyer runs: does the receipt's content hash match the bytes it exchanged? */
export function contentHashOf(salt: Hex, requestHash: Hex, responseHash: Hex): Hex {
  return bytesToHex(keccak256Bytes(concatBytes([hexToBytes(salt), hexToBytes(requestHash), hexToBytes(responseHash)])));
}
