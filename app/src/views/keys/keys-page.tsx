/** API keys: being built. */
export function KeysPage() {
  return <p className="empty">API keys: coming in this release.</p>;
}
