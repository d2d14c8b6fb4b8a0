/** What you can spend: being built. */
export function FundsPage() {
  return <p className="empty">What you can spend: coming in this release.</p>;
}
