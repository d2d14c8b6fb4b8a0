/** Usage: being built. */
export function UsagePage() {
  return <p className="empty">Usage: coming in this release.</p>;
}
