/**
 * The new key's secret, shown once: a copy button, the warning that it will not be shown again, and
 * snippets with this gateway's base URL and the key, ready to paste.
 */
import { useEffect, useRef } from "react";
import type { CreateApiKeyReturnType } from "../../../../client";
import { Card } from "../../components/card";
import { CopyButton } from "../../components/copy-button";
import { keySnippets } from "./snippets";

export function NewKeySecret({ created, model, onDone }: { created: CreateApiKeyReturnType; model: string; onDone(): void }) {
  const baseUrl = `${window.location.origin}/v1`;
  const heading = useRef<HTMLDivElement>(null);
  // Bring the one-time secret into view and to the screen reader's attention.
  useEffect(() => heading.current?.focus(), [created.id]);
  return (
    <Card title="Your new API key" className="new-key">
      <div ref={heading} tabIndex={-1} className="notice warning" role="note">
        <p className="notice-title">Copy this key now: it will not be shown again.</p>
        <p>The gateway keeps only a hash of it. If you lose it, revoke it and create another.</p>
      </div>
      <div className="secret">
        <code aria-label="API key secret" data-testid="api-key-secret">
          {created.key}
        </code>
        <CopyButton text={created.key} label="Copy the API key" />
      </div>
      <p>
        Key <span className="mono">{created.id}</span>
        {created.label ? <> (“{created.label}”)</> : null}. Base URL: <span className="mono">{baseUrl}</span>
      </p>
      {keySnippets(baseUrl, created.key, model).map((snippet) => (
        <div key={snippet.title} className="snippet-block">
          <div className="card-header">
            <h3>{snippet.title}</h3>
            <CopyButton text={snippet.code} label={`Copy the ${snippet.title} example`} />
          </div>
          <pre className="snippet" tabIndex={0} aria-label={`${snippet.title} example`}>
            <code>{snippet.code}</code>
          </pre>
        </div>
      ))}
      <button type="button" className="secondary" onClick={onDone}>
        I have saved the key
      </button>
    </Card>
  );
}
