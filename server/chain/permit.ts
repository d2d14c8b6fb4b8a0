/** EIP-2612 permits, for deposits that need no separate approve transaction. */

export const permitTypes = {
  Permit: [
    { name: "owner", type: "address" },
    { name: "spender", type: "address" },
    { name: "value", type: "uint256" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
  ],
} as const;

/** ethers' `signTypedData` wants mutable arrays; viem takes `permitTypes` as it is. */
export const permitTypesForEthers = { Permit: [...permitTypes.Permit] };
