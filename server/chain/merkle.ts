/**
 * Merkle trees over 32-byte leaves with sorted-pair hashing, as OpenZeppelin's `MerkleProof` verifies.
 * A batch's content root is such a tree over its receipts' EIP-712 struct hashes.
 *
 * Ours rather than `@openzeppelin/merkle-tree`: that library's trees sort their leaves and lay them out as a
 * complete binary tree in an array (`SimpleMerkleTree`), or double-hash typed leaves (`StandardMerkleTree`),
 * so either would change the root of every batch already settled and every proof a buyer holds. Proofs from
 * this tree verify with OpenZeppelin's `MerkleProof` on-chain all the same; the code is this one file, with
 * viem's keccak only, so it runs in a browser for the receipt audit.
 */
import { concat, keccak256, type Hex } from "viem";

function hashPair(a: Hex, b: Hex): Hex {
  return BigInt(a) < BigInt(b) ? keccak256(concat([a, b])) : keccak256(concat([b, a]));
}

/** All levels of the tree, leaves first; an odd node is carried up unpaired. */
function buildLevels(leaves: readonly Hex[]): Hex[][] {
  if (leaves.length === 0) throw new RangeError("a Merkle tree needs at least one leaf");
  const levels: Hex[][] = [leaves.slice()];
  while (levels[levels.length - 1].length > 1) {
    const below = levels[levels.length - 1];
    const above: Hex[] = [];
    for (let i = 0; i < below.length; i += 2) above.push(i + 1 < below.length ? hashPair(below[i], below[i + 1]) : below[i]);
    levels.push(above);
  }
  return levels;
}

export function merkleRoot(leaves: readonly Hex[]): Hex {
  const levels = buildLevels(leaves);
  return levels[levels.length - 1][0];
}

/** The sibling hashes that lead from `leaves[index]` to the root. */
export function merkleProof(leaves: readonly Hex[], index: number): Hex[] {
  if (index < 0 || index >= leaves.length) throw new RangeError(`leaf index ${index} outside 0..${leaves.length - 1}`);
  const proof: Hex[] = [];
  const levels = buildLevels(leaves);
  for (let level = 0; level < levels.length - 1; level++) {
    const sibling = index ^ 1;
    if (sibling < levels[level].length) proof.push(levels[level][sibling]);
    index >>= 1;
  }
  return proof;
}

/** Every leaf's proof from one build of the tree: a batch's proofs in O(n log n), not O(n²). */
export function merkleProofs(leaves: readonly Hex[]): Hex[][] {
  const levels = buildLevels(leaves);
  return leaves.map((_, leafIndex) => {
    const proof: Hex[] = [];
    for (let level = 0, index = leafIndex; level < levels.length - 1; level++, index >>= 1) {
      const sibling = index ^ 1;
      if (sibling < levels[level].length) proof.push(levels[level][sibling]);
    }
    return proof;
  });
}

export function verifyMerkleProof(root: Hex, leaf: Hex, proof: readonly Hex[]): boolean {
  return proof.reduce<Hex>((node, sibling) => hashPair(node, sibling), leaf) === root;
}
