/** The provider's models as checkboxes, for the plans that cover some of them (credit and subscription plans). */
import type { Dispatch, SetStateAction } from "react";
import type { ProviderDashboard } from "./load-provider-dashboard";

export function ModelChecklist({ legend, models, selected, onChange, error, errorId }: {
  legend: string;
  models: ProviderDashboard["models"];
  selected: readonly number[];
  onChange: Dispatch<SetStateAction<number[]>>;
  error?: string;
  /** The id of the error's paragraph, which the fieldset names as its description. */
  errorId: string;
}) {
  return (
    <fieldset aria-describedby={error ? errorId : undefined}>
      <legend>{legend}</legend>
      {models.map((model) => (
        <label key={model.modelId} className="check">
          <input
            type="checkbox"
            checked={selected.includes(model.modelId)}
            onChange={(event) => onChange((ids) => (event.target.checked ? [...ids, model.modelId] : ids.filter((id) => id !== model.modelId)))}
          />{" "}
          {model.name}
        </label>
      ))}
      {error && (
        <p id={errorId} className="field-error">
          {error}
        </p>
      )}
    </fieldset>
  );
}
