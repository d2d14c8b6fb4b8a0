/** Market: being built. */
export function MarketPage() {
  return <p className="empty">Market: coming in this release.</p>;
}
