require('ts-node').register({ transpileOnly: true, project: '/work/main/tsconfig.json' });
const path = '/work/main/server/chain/';
const { encodeUsageBatch } = require(path + 'usage-batch.ts');
const { tollgateDomain, usageBatchTypes, usageReceiptTypes } = require(path + 'eip712.ts');
const { signUsageBatch } = require(path + 'sign-batch.ts');
const { keccak256, toHex, hashTypedData } = require('viem');
const { privateKeyToAccount } = require('viem/accounts');
const A = "0x1111111111111111111111111111111111111111", B = "0x00000000000000000000000000000000000000bB";
const recs = [
 {sequence:42n,buyer:A,modelId:1,priceEpoch:0,inputTokens:1200,cachedInputTokens:200,outputTokens:350,servedAt:1700000000,receiptHash:keccak256(toHex("pinned receipt 42"))},
 {sequence:43n,buyer:B,modelId:2,priceEpoch:3,inputTokens:4000000,cachedInputTokens:0,outputTokens:1,servedAt:1700000090,receiptHash:keccak256(toHex("pinned receipt 43"))},
 {sequence:44n,buyer:A,modelId:2,priceEpoch:3,inputTokens:0,cachedInputTokens:0,outputTokens:4294967295,servedAt:1700000005,receiptHash:keccak256(toHex("pinned receipt 44"))},
];
const batch = encodeUsageBatch(recs, new Map([[A, 7]]));
console.log(batch);
const domain = tollgateDomain(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3");
console.log("digest", hashTypedData({domain, types: usageBatchTypes, primaryType: "UsageBatch", message: batch}));
const receipt = {sequence:42n,buyer:A,modelId:1,inputTokens:1200,cachedInputTokens:200,outputTokens:350,servedAt:1700000000,inputPrice:150000n,cachedInputPrice:75000n,outputPrice:600000n,cost:375n,contentHash:keccak256(toHex("pinned response body"))};
console.log("receipt", hashTypedData({domain, types: usageReceiptTypes, primaryType: "UsageReceipt", message: receipt}));
signUsageBatch(privateKeyToAccount("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"), {chainId:31337,address:"0x5FbDB2315678afecb367f032d93F642f64180aa3"}, batch).then(s=>console.log("sig", s));
