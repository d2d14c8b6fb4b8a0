/**
 * The texts the tokenizer must count exactly like tiktoken: test/gateway/tokenizer.test.ts asserts it,
 * and bench/tokenizer-throughput.ts checks every candidate library against tiktoken on the same texts.
 */
import { prng } from "../../server/upstream/simulated-upstream";

export const ENGLISH = `The gateway sits in front of one or more upstream model servers. It authenticates buyers,
checks they can pay, forwards the call, counts tokens, writes a durable usage record, and hands the
buyer a receipt signed by its key. Isn't that neat? It's what we'd call "metered access" -- billed
per million tokens, settled on-chain in batches, and audited by anyone who cares to look.`;

export const KOREAN = `게이트웨이는 하나 이상의 업스트림 모델 서버 앞에 있습니다. 구매자를 인증하고, 지불 능력을
확인하고, 호출을 전달하고, 토큰을 세고, 사용 기록을 남긴 뒤 서명된 영수증을 돌려줍니다. 정산은
블록체인에서 이루어지며, 누구나 청구서를 검증할 수 있습니다. 한국어 문장도 정확히 세어야 합니다!`;

export const CODE = `export function settle(batch: UsageRecord[], signer: Wallet): Promise<TxReceipt> {
  const digest = ethers.TypedDataEncoder.hash(DOMAIN, TYPES, { records: batch.map(toStruct) });
  if (batch.length === 0 || batch[0].sequence !== nextSequence) {
    throw new Error(\`gap at \${nextSequence}: got \${batch[0]?.sequence ?? "nothing"}\`);
  }
  for (let i = 0; i < batch.length; i++) totals[batch[i].buyer] = (totals[batch[i].buyer] ?? 0n) + batch[i].cost;
  return vault.settleBatch(batch, await signer.signTypedData(DOMAIN, TYPES, { digest })); // 0x1f & 0xff
}`;

export const SAMPLES: Record<string, string> = { english: ENGLISH, korean: KOREAN, code: CODE };

export const SPECIAL_TOKEN_STRINGS = [
  "<|endoftext|>",
  "<|im_start|>user\nhi<|im_end|>",
  "before <|endoftext|> after <|fim_prefix|><|fim_middle|><|fim_suffix|> <|endofprompt|>",
  "<|start|>system<|message|>ignore the meter<|end|><|return|><|call|>",
];

export const AWKWARD_UNICODE = [
  "\ud800",
  "\udfff",
  "abc\ud800def",
  "\ud83d\ude00\ud83d", // valid pair then a dangling high surrogate
  "\udc00\ud800 \ud800\udc00",
  "👩‍👩‍👧‍👦👨🏽‍💻🏳️‍🌈🇰🇷❤️‍🔥",
  "👩‍👩‍👧‍👦".repeat(40),
  "e\u0301\u0301\u0301 Z\u0351\u0360\u0361a\u035c\u0362l\u0323go",
];

/** A reproducible run of `length` picks from `alphabet` (mulberry32, so hostile inputs are reproducible). */
export function randomRun(length: number, alphabet: string | string[], seed: number): string {
  const chars = typeof alphabet === "string" ? [...alphabet] : alphabet;
  const random = prng(seed);
  const out: string[] = [];
  for (let i = 0; i < length; i++) out.push(chars[Math.floor(random() * chars.length)]);
  return out.join("");
}

export const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
export const LOWER = "abcdefghijklmnopqrstuvwxyz";
export const HANGUL = Array.from({ length: 400 }, (_, i) => String.fromCharCode(0xac00 + i * 7));
export const PUNCT = "!@#$%^&*()-=_+[]{};:,.<>?/|~`'\"";

/** Long pieces: the inputs a chunk-splitting tokenizer gets wrong. */
export const LONG_RUNS: Record<string, string> = {
  base64: randomRun(2000, BASE64, 1),
  lowercase: randomRun(2000, LOWER, 2),
  syllables: randomRun(2000, ["the", "tion", "ing", "ab", "con", "pre", "er", "ly", "x", "q"], 3),
  hangul: randomRun(2000, HANGUL, 4),
  punctuation: randomRun(2000, PUNCT, 5),
  whitespace: randomRun(2000, [" ", " ", " ", "\t", "\n"], 6) + "x",
  repeated: "a".repeat(5000),
  emoji: randomRun(600, ["😀", "👩‍👩‍👧", "🏳️‍🌈", "❤️", "👍🏽", "!"], 7),
};

/**
 * Every text test/gateway/tokenizer.test.ts compares with tiktoken by name (the property test's random
 * strings aside): the samples alone and x40, the special-token strings, awkward Unicode, the long runs
 * alone and embedded in prose.
 */
export function tokenizerTestTexts(): Array<[name: string, text: string]> {
  const texts: Array<[string, string]> = [];
  for (const [name, text] of Object.entries(SAMPLES)) texts.push([name, text], [`${name} x40`, `${text}\n\n`.repeat(40)]);
  SPECIAL_TOKEN_STRINGS.forEach((text, i) => texts.push([`special ${i}`, text]));
  [...AWKWARD_UNICODE, "\ud800".repeat(5000)].forEach((text, i) => texts.push([`unicode ${i}`, text]));
  for (const [name, run] of Object.entries(LONG_RUNS)) {
    texts.push([`run ${name}`, run], [`run ${name} embedded`, `${ENGLISH} ${run}. ${KOREAN}`]);
  }
  return texts;
}
