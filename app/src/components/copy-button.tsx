/** Copies text to the clipboard and says so (to screen readers too). */
import { useState } from "react";

export function CopyButton({ text, label }: { text: string; label: string }) {
  const [copied, setCopied] = useState<"yes" | "no" | undefined>();
  return (
    <>
      <button
        type="button"
        className="secondary"
        aria-label={label}
        onClick={() =>
          navigator.clipboard.writeText(text).then(
            () => setCopied("yes"),
            () => setCopied("no"),
          )
        }
      >
        {copied === "yes" ? "Copied" : "Copy"}
      </button>
      <span role="status" className="visually-hidden">
        {copied === "yes" ? "Copied to the clipboard" : copied === "no" ? "The browser refused the clipboard: select the text and copy it" : ""}
      </span>
    </>
  );
}
