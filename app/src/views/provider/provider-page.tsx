/** Provider: being built. */
export function ProviderPage() {
  return <p className="empty">Provider: coming in this release.</p>;
}
