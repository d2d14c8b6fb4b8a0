/**
 * Deposit from the wallet into the vault: one transaction with an EIP-2612 permit when the token signs
 * them (a signature costs no gas), else approve then deposit. On the local test token, a faucet.
 */
import { useState, type FormEvent } from "react";
import { deposit, depositWithPermit, mintTestTokens, type GetTokenCapabilitiesReturnType } from "../../../../client";
import { ActionStatus } from "../../components/action-status";
import { Card } from "../../components/card";
import { Field } from "../../components/field";
import { useApp } from "../../app-state";
import { formatAmount } from "../../lib/amounts";
import { useAction } from "../../lib/use-transaction";
import { amountUpTo, shownError } from "./validate";

/** What the faucet mints per click: enough to try every form on the page. */
const FAUCET_WHOLE_TOKENS = 1_000n;

export function DepositForm({ wallet, capabilities }: { wallet: bigint; capabilities?: GetTokenCapabilitiesReturnType }) {
  const { token } = useApp();
  const action = useAction();
  const faucet = useAction();
  const [text, setText] = useState("");
  const [submitted, setSubmitted] = useState(false);
  const parsed = amountUpTo(text, token, wallet, "your wallet holds");
  const permit = capabilities?.permit ?? false;

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setSubmitted(true);
    if (!parsed.ok || !capabilities) return;
    const amount = parsed.value;
    const done = await action.run<{ credited: bigint }>(
      "Deposit",
      (client) => (permit ? depositWithPermit(client, { amount }) : deposit(client, { amount })),
      (result) => `Deposited ${formatAmount(result.credited, token)} into your vault balance.`,
    );
    if (done) {
      setText("");
      setSubmitted(false);
    }
  };

  const faucetAmount = FAUCET_WHOLE_TOKENS * 10n ** BigInt(token.decimals);
  return (
    <Card title="Deposit">
      <form onSubmit={submit} noValidate>
        <Field
          label={`Amount to deposit (${token.symbol})`}
          inputMode="decimal"
          autoComplete="off"
          value={text}
          onChange={(event) => setText(event.target.value)}
          error={shownError(parsed, text, submitted)}
          hint={`Your wallet holds ${formatAmount(wallet, token)}.`}
        />
        <p className="small">
          {capabilities === undefined
            ? "Checking what the token supports…"
            : permit
              ? "One transaction: your wallet first asks you to sign a permit (no gas), then to send the deposit."
              : "This token has no permit: your wallet sends an approval for exactly this amount first (if needed), then the deposit."}
        </p>
        <div className="row">
          <button type="submit" disabled={action.busy || capabilities === undefined}>
            {action.busy ? "Depositing…" : "Deposit"}
          </button>
          {capabilities?.faucet && (
            <button
              type="button"
              className="secondary"
              disabled={faucet.busy}
              onClick={() => void faucet.run("Get test tokens", (client) => mintTestTokens(client, { amount: faucetAmount }), () => `Minted ${formatAmount(faucetAmount, token)} to your wallet.`)}
            >
              Get test tokens
            </button>
          )}
        </div>
      </form>
      <ActionStatus state={action.state} />
      {capabilities?.faucet && <ActionStatus state={faucet.state} />}
    </Card>
  );
}
