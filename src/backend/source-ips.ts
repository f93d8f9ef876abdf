/**
 * login_source_ips: the local addresses outgoing backend connections are made from, used
 * round-robin from a random start. An entry prefixed with `?` is kept only when this host has
 * that address, so one configuration can serve many hosts (Dovecot's rule).
 */
import { networkInterfaces } from 'node:os';

export class SourceIps {
  readonly #ips: readonly string[];
  #next: number;

  constructor(list: readonly string[], local: ReadonlySet<string> = localAddresses()) {
    this.#ips = list.flatMap((entry) => {
      if (!entry.startsWith('?')) return [entry];
      const ip = entry.slice(1);
      return local.has(ip) ? [ip] : [];
    });
    this.#next = this.#ips.length > 0 ? Math.floor(Math.random() * this.#ips.length) : 0;
  }

  get size(): number {
    return this.#ips.length;
  }

  /** The next source address, or undefined to let the kernel choose. */
  next(): string | undefined {
    if (this.#ips.length === 0) return undefined;
    const ip = this.#ips[this.#next % this.#ips.length];
    this.#next = (this.#next + 1) % this.#ips.length;
    return ip;
  }
}

export function localAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) out.add(a.address);
  return out;
}
