/**
 * Create an API key by signing `CreateApiKey` with the wallet: label, spend cap, the models it may call
 * (from the gateway's /v1/models; none ticked = all), expiry and tags. Checked here by the gateway's own
 * rules first, so the wallet is asked only for a request the gateway will take.
 */
import { useId, useState, type FormEvent } from "react";
import { createApiKey, type CreateApiKeyReturnType, type GatewayModel } from "../../../../client";
import { useApp } from "../../app-state";
import { ActionStatus } from "../../components/action-status";
import { Card } from "../../components/card";
import { Field } from "../../components/field";
import { LoadError } from "../../components/load-error";
import type { Loaded } from "../../lib/use-load";
import { useAction } from "../../lib/use-transaction";
import { parseKeyForm, type KeyFormErrors, type KeyFormText } from "./key-form-values";

const EMPTY: KeyFormText = { label: "", spendCap: "", models: [], expiresAt: "", tags: "" };

export function CreateKeyForm({ models, onCreated }: { models: Loaded<GatewayModel[]>; onCreated(key: CreateApiKeyReturnType): void }) {
  const { token, canSign } = useApp();
  const action = useAction();
  const [text, setText] = useState<KeyFormText>(EMPTY);
  const [errors, setErrors] = useState<KeyFormErrors>({});
  const modelsHint = useId();

  const set = <K extends keyof KeyFormText>(name: K, value: KeyFormText[K]) => {
    setText((previous) => ({ ...previous, [name]: value }));
    setErrors((previous) => ({ ...previous, [name]: undefined }));
  };
  const toggleModel = (name: string, on: boolean) => set("models", on ? [...text.models, name] : text.models.filter((model) => model !== name));

  async function submit(event: FormEvent) {
    event.preventDefault();
    const parsed = parseKeyForm(text, token, Math.floor(Date.now() / 1000));
    if (!parsed.ok) {
      setErrors(parsed.errors);
      return;
    }
    const created = await action.run("Create the API key", (signing) => createApiKey(signing, parsed.value), (key) => `Key ${key.id} created. Copy its secret above: it is shown only once.`);
    if (created) {
      setText(EMPTY);
      onCreated(created);
    }
  }

  return (
    <Card title="Create an API key">
      <form onSubmit={submit} noValidate>
        <Field label="Label" value={text.label} onChange={(e) => set("label", e.target.value)} maxLength={100} hint="For you: which app or teammate uses it." error={errors.label} autoComplete="off" />
        <Field
          label={`Spend cap (${token.symbol}, optional)`}
          inputMode="decimal"
          value={text.spendCap}
          onChange={(e) => set("spendCap", e.target.value)}
          hint="The most this key may spend in total. Empty: no cap beyond your balance."
          error={errors.spendCap}
          autoComplete="off"
        />
        <fieldset aria-describedby={modelsHint}>
          <legend>Models it may call</legend>
          <p id={modelsHint} className="field-hint">
            None ticked: every model, including ones listed later.
          </p>
          {models.error !== undefined && <LoadError error={models.error} what="the models on sale" retry={models.reload} />}
          {models.loading && !models.data && <p aria-busy="true">Loading the models…</p>}
          {models.data?.map((model) => (
            <label key={model.id} className="check">
              <input type="checkbox" checked={text.models.includes(model.id)} onChange={(e) => toggleModel(model.id, e.target.checked)} />
              <span className="mono">{model.id}</span> <span className="small muted">({model.tollgate.kind})</span>
            </label>
          ))}
        </fieldset>
        <Field label="Expires (optional)" type="datetime-local" value={text.expiresAt} onChange={(e) => set("expiresAt", e.target.value)} hint="Your local time. Empty: the key never expires." error={errors.expiresAt} />
        <Field
          label="Tags (optional)"
          value={text.tags}
          onChange={(e) => set("tags", e.target.value)}
          placeholder="team:search, workflow:nightly"
          hint="Copied onto every call the key makes, to split costs on the Usage page. Separate with commas or spaces."
          error={errors.tags}
          autoComplete="off"
        />
        <button type="submit" disabled={!canSign || action.busy}>
          {action.busy ? "Creating…" : "Sign and create the key"}
        </button>
        {!canSign && <p className="field-hint">Connect a wallet on this deployment's network to create a key.</p>}
      </form>
      <ActionStatus state={action.state} />
    </Card>
  );
}
