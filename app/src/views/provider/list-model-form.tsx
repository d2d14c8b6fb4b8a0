/** Lists a new model at its prices per million tokens; a listing's prices are in force at once. */
import { useState, type FormEvent } from "react";
import { listModel } from "../../../../client";
import { useApp } from "../../app-state";
import { ActionStatus } from "../../components/action-status";
import { Field } from "../../components/field";
import { useAction } from "../../lib/use-transaction";
import type { ProviderDashboard } from "./load-provider-dashboard";
import { PriceFields } from "./price-fields";
import { parsePrices, type PriceTexts } from "./price-texts";

const EMPTY: PriceTexts = { input: "", cachedInput: "", output: "" };
/** The contract's bound on a model name, in UTF-8 bytes. */
const MAX_NAME_BYTES = 64;

export function ListModelForm({ dashboard }: { dashboard: ProviderDashboard }) {
  const { token } = useApp();
  const action = useAction();
  const [name, setName] = useState("");
  const [texts, setTexts] = useState(EMPTY);
  const [errors, setErrors] = useState<ReturnType<typeof parsePrices>["errors"]>({});
  const [nameError, setNameError] = useState<string>();

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const bytes = new TextEncoder().encode(name.trim()).length;
    const problem = bytes === 0 ? "Enter the model's name, as buyers will call it." : bytes > MAX_NAME_BYTES ? `A model name may be at most ${MAX_NAME_BYTES} bytes; this one is ${bytes}.` : undefined;
    const parsed = parsePrices(texts, token);
    setNameError(problem);
    setErrors(parsed.errors);
    if (problem || !parsed.prices) return;
    const prices = parsed.prices;
    void action.run(`List ${name.trim()}`, (client) => listModel(client, { providerId: dashboard.providerId, name: name.trim(), prices }), (result) => {
      setName("");
      setTexts(EMPTY);
      return `Listed ${name.trim()} as model #${result.modelId}.`;
    });
  };
  return (
    <form onSubmit={submit} noValidate aria-labelledby="list-model-title">
      <h3 id="list-model-title">List a new model</h3>
      <Field label="Model name" value={name} onChange={(event) => setName(event.target.value)} error={nameError} autoComplete="off" placeholder="e.g. llama-3.1-8b-instruct" hint="The name buyers pass as `model` to the gateway." />
      <PriceFields texts={texts} onChange={setTexts} errors={errors} token={token} />
      <button type="submit" disabled={action.busy}>
        List model
      </button>
      <ActionStatus state={action.state} />
    </form>
  );
}
