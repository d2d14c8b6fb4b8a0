/**
 * The chain audit's checkpoint (client/audit/rpc/checkpoint.ts) in a JSON-lines file, for the CLI. A scan
 * saves after every chunk, so a save must cost what the chunk added, not the whole history: the file is a
 * full snapshot line followed by one line per save with only what is new (logs, block times, batch calls),
 * appended. A process killed while
 * appending leaves at most a torn last line, which loading ignores (that chunk is scanned again). After a
 * reorganisation trimmed the logs, and every so many chunks to keep loading quick, the file is rewritten as
 * one snapshot (to a temporary file, then renamed, so a kill then leaves the old file whole).
 */
import fs from "node:fs";
import path from "node:path";
import type { Address, Hash } from "viem";
import { deserializeLog, serializeLog, type Checkpoint, type CheckpointBlock, type CheckpointStore, type SavedBatchCall, type SerializedLog } from "../../client/audit/rpc/checkpoint";

/** Chunk lines appended before the file is compacted into one snapshot. */
const COMPACT_AFTER = 256;
/**
 * 2: the logs include the subscriptions contract's. A version 1 file lacks them, so it is not resumed from (the scan
 * starts over) rather than replayed into false balance findings.
 */
const VERSION = 2;

interface SerializedTrail {
  block: string;
  hash: Hash;
}

interface SnapshotLine {
  version: number;
  kind: "snapshot";
  chainId: number;
  tollgate: Address;
  deployBlock: string;
  scannedTo: string;
  trail: SerializedTrail[];
  logs: SerializedLog[];
  blockTimes: [string, number][];
  batchCalls?: SavedBatchCall[];
}

interface ChunkLine {
  kind: "chunk";
  scannedTo: string;
  trail: SerializedTrail[];
  logs: SerializedLog[];
  blockTimes: [string, number][];
  batchCalls?: SavedBatchCall[];
}

const trailOut = (trail: CheckpointBlock[]): SerializedTrail[] => trail.map(({ block, hash }) => ({ block: block.toString(), hash }));
const trailIn = (trail: SerializedTrail[]): CheckpointBlock[] => trail.map(({ block, hash }) => ({ block: BigInt(block), hash }));
const timesOut = (times: [bigint, number][]): [string, number][] => times.map(([block, time]) => [block.toString(), time]);

function logKey(checkpoint: Checkpoint, index: number): string {
  const log = checkpoint.logs[index];
  return log ? `${log.blockNumber}:${log.logIndex}:${log.transactionHash}` : "";
}

/** What this process knows the file holds, so the next save can append only what is new. */
interface Written {
  chainId: number;
  tollgate: Address;
  deployBlock: bigint;
  logs: number;
  lastLogKey: string;
  blockTimes: number;
  batchCalls: number;
  lastCallKey: string;
  chunks: number;
}

export class CheckpointFileError extends Error {
  override name = "CheckpointFileError";
}

export function checkpointFile(file: string): CheckpointStore & { readonly path: string } {
  let written: Written | undefined;

  const remember = (checkpoint: Checkpoint, chunks: number): Written => ({
    chainId: checkpoint.chainId,
    tollgate: checkpoint.tollgate,
    deployBlock: checkpoint.deployBlock,
    logs: checkpoint.logs.length,
    lastLogKey: logKey(checkpoint, checkpoint.logs.length - 1),
    blockTimes: checkpoint.blockTimes.length,
    batchCalls: checkpoint.batchCalls?.length ?? 0,
    lastCallKey: checkpoint.batchCalls?.[checkpoint.batchCalls.length - 1]?.[0] ?? "",
    chunks,
  });

  const writeSnapshot = (checkpoint: Checkpoint) => {
    const line: SnapshotLine = {
      version: VERSION,
      kind: "snapshot",
      chainId: checkpoint.chainId,
      tollgate: checkpoint.tollgate,
      deployBlock: checkpoint.deployBlock.toString(),
      scannedTo: checkpoint.scannedTo.toString(),
      trail: trailOut(checkpoint.trail),
      logs: checkpoint.logs.map(serializeLog),
      blockTimes: timesOut(checkpoint.blockTimes),
      batchCalls: checkpoint.batchCalls ?? [],
    };
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const temporary = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(temporary, `${JSON.stringify(line)}\n`);
    fs.renameSync(temporary, file);
    written = remember(checkpoint, 0);
  };

  return {
    path: file,

    async load() {
      let text: string;
      try {
        text = fs.readFileSync(file, "utf8");
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        throw new CheckpointFileError(`cannot read the checkpoint ${file}: ${(error as Error).message}`);
      }
      const lines = text.split("\n");
      let checkpoint: Checkpoint | undefined;
      let chunks = 0;
      for (const line of lines) {
        if (!line.trim()) continue;
        let parsed: SnapshotLine | ChunkLine;
        try {
          parsed = JSON.parse(line) as SnapshotLine | ChunkLine;
        } catch {
          // A torn last line: the run was killed while appending that chunk, which is simply scanned again.
          break;
        }
        if (parsed.kind === "snapshot") {
          if (parsed.version !== VERSION) return undefined;
          checkpoint = {
            chainId: parsed.chainId,
            tollgate: parsed.tollgate,
            deployBlock: BigInt(parsed.deployBlock),
            scannedTo: BigInt(parsed.scannedTo),
            trail: trailIn(parsed.trail),
            logs: parsed.logs.map(deserializeLog),
            blockTimes: parsed.blockTimes.map(([block, time]) => [BigInt(block), time]),
            batchCalls: parsed.batchCalls ?? [],
          };
        } else if (checkpoint) {
          checkpoint.scannedTo = BigInt(parsed.scannedTo);
          checkpoint.trail = trailIn(parsed.trail);
          for (const log of parsed.logs) checkpoint.logs.push(deserializeLog(log));
          for (const [block, time] of parsed.blockTimes) checkpoint.blockTimes.push([BigInt(block), time]);
          for (const call of parsed.batchCalls ?? []) checkpoint.batchCalls!.push(call);
          chunks++;
        }
      }
      if (checkpoint) written = remember(checkpoint, chunks);
      return checkpoint;
    },

    async save(checkpoint) {
      const appendable =
        written !== undefined &&
        written.chainId === checkpoint.chainId &&
        written.tollgate === checkpoint.tollgate &&
        written.deployBlock === checkpoint.deployBlock &&
        checkpoint.logs.length >= written.logs &&
        checkpoint.blockTimes.length >= written.blockTimes &&
        logKey(checkpoint, written.logs - 1) === written.lastLogKey &&
        (checkpoint.batchCalls?.length ?? 0) >= written.batchCalls &&
        (written.batchCalls === 0 || checkpoint.batchCalls?.[written.batchCalls - 1]?.[0] === written.lastCallKey) &&
        written.chunks < COMPACT_AFTER;
      if (!appendable) return writeSnapshot(checkpoint);
      const line: ChunkLine = {
        kind: "chunk",
        scannedTo: checkpoint.scannedTo.toString(),
        trail: trailOut(checkpoint.trail),
        logs: checkpoint.logs.slice(written!.logs).map(serializeLog),
        blockTimes: timesOut(checkpoint.blockTimes.slice(written!.blockTimes)),
        batchCalls: (checkpoint.batchCalls ?? []).slice(written!.batchCalls),
      };
      fs.appendFileSync(file, `${JSON.stringify(line)}\n`);
      written = remember(checkpoint, written!.chunks + 1);
    },
  };
}

/** Where the CLI keeps a deployment's checkpoint unless told otherwise: one file per chain and Tollgate. */
export function defaultCheckpointPath(chainId: number, tollgate: Address, directory = ".tollgate"): string {
  return path.join(directory, `audit-${chainId}-${tollgate.toLowerCase()}.jsonl`);
}
