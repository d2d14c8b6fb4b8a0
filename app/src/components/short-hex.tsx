/** An address or hash, shortened for the eye with the whole value in its title and for screen readers. */
export function ShortHex({ value, href }: { value: string; href?: string }) {
  const short = value.length > 14 ? `${value.slice(0, 6)}…${value.slice(-4)}` : value;
  const content = (
    <span className="mono" title={value}>
      <span aria-hidden="true">{short}</span>
      <span className="visually-hidden">{value}</span>
    </span>
  );
  return href ? <a href={href}>{content}</a> : content;
}
