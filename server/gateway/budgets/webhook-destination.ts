/**
 * Where budget alerts may be sent. A webhook URL is chosen by a buyer, but the POST comes from the gateway's
 * own network position: without a rule, any buyer could make the gateway call its loopback services, the
 * cloud's metadata endpoint (169.254.169.254) or the provider's private network (server-side request forgery).
 * So, unless the operator allows private networks (`budgets.webhookAllowPrivateNetworks`, for a receiver on
 * the same host or LAN), a webhook must reach a public address:
 *
 * - at creation, a URL naming a non-public IP literal or a `localhost` name is refused with a 400;
 * - at delivery, the host name is resolved and the connection is made only to a public address it resolved
 *   to, in the same lookup that connects, so a name that later resolves to a private address (DNS rebinding)
 *   gets nowhere. Redirects are not followed.
 */
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { BlockList, isIP } from "node:net";
import { Agent } from "undici";

/** Special-purpose ranges (IANA's IPv4 and IPv6 special registries): none is a public internet receiver. */
const NON_PUBLIC = new BlockList();
for (const [network, prefix] of [
  ["0.0.0.0", 8], // "this network"
  ["10.0.0.0", 8], // private
  ["100.64.0.0", 10], // carrier-grade NAT
  ["127.0.0.0", 8], // loopback
  ["169.254.0.0", 16], // link-local, cloud metadata
  ["172.16.0.0", 12], // private
  ["192.0.0.0", 24], // protocol assignments
  ["192.0.2.0", 24], // documentation
  ["192.88.99.0", 24], // 6to4 relay (deprecated)
  ["192.168.0.0", 16], // private
  ["198.18.0.0", 15], // benchmarking
  ["198.51.100.0", 24], // documentation
  ["203.0.113.0", 24], // documentation
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved, broadcast
] as const) {
  NON_PUBLIC.addSubnet(network, prefix, "ipv4");
}
for (const [network, prefix] of [
  ["::", 128], // unspecified
  ["::1", 128], // loopback
  ["64:ff9b:1::", 48], // local-use NAT64
  ["100::", 64], // discard
  ["2001:db8::", 32], // documentation
  ["fc00::", 7], // unique local
  ["fe80::", 10], // link-local
  ["ff00::", 8], // multicast
] as const) {
  NON_PUBLIC.addSubnet(network, prefix, "ipv6");
}

/** The IPv4 address an IPv6 address embeds (mapped `::ffff:a.b.c.d`, or NAT64 `64:ff9b::a.b.c.d`), if any. */
function embeddedIpv4(address: string): string | null {
  const dotted = /^(?:::ffff:|64:ff9b::)(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (dotted) return dotted[1];
  const hex = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(address);
  if (!hex) return null;
  const high = parseInt(hex[1], 16);
  const low = parseInt(hex[2], 16);
  return `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
}

/** True when `address` (an IPv4 or IPv6 literal) is routable on the public internet. */
export function isPublicAddress(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, "");
  const family = isIP(bare);
  if (family === 0) return false;
  if (family === 6) {
    const v4 = embeddedIpv4(bare);
    if (v4 !== null) return isPublicAddress(v4);
    return !NON_PUBLIC.check(bare, "ipv6");
  }
  return !NON_PUBLIC.check(bare, "ipv4");
}

const LOCAL_NAME = /(^|\.)localhost\.?$/i;

/**
 * Why this webhook URL may not be used, or null when it may. Only what the URL itself shows is judged here
 * (an IP literal, a `localhost` name); names are checked again when an alert is delivered.
 */
export function webhookUrlProblem(url: string, allowPrivateNetworks: boolean): string | null {
  if (allowPrivateNetworks) return null;
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    return "it is not a URL";
  }
  const bare = host.replace(/^\[|\]$/g, "");
  if (LOCAL_NAME.test(bare)) return `${host} is this machine`;
  if (isIP(bare) !== 0 && !isPublicAddress(bare)) return `${host} is not a public internet address`;
  return null;
}

/** Resolves a host name to all its addresses (the system's resolver; tests give a fixed one). */
export type Resolver = (hostname: string, callback: (error: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => void;
const systemResolver: Resolver = (hostname, callback) => dnsLookup(hostname, { all: true }, callback);

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A connection pool whose every connection goes to a public address: the name is resolved in the connect step
 * itself and the connection refused when no resolved address is public.
 */
export function publicOnlyAgent(resolve: Resolver = systemResolver): Agent {
  const lookup = (hostname: string, options: { all?: boolean }, callback: LookupCallback): void => {
    resolve(hostname, (error, addresses) => {
      if (error) return callback(error, []);
      const usable = addresses.filter((entry) => isPublicAddress(entry.address));
      if (usable.length === 0) {
        const refused = Object.assign(new Error(`${hostname} resolves to ${addresses.map((entry) => entry.address).join(", ")}, not a public internet address; webhooks to private networks are off (budgets.webhookAllowPrivateNetworks)`), { code: "EWEBHOOKPRIVATE" });
        return callback(refused, []);
      }
      if (options.all) return callback(null, usable);
      callback(null, usable[0].address, usable[0].family);
    });
  };
  return new Agent({ connect: { lookup: lookup as never } });
}
