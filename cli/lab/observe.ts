// Looking at a lab from outside its agents: which host's kernel has the service address, who answers the client,
// and waiting for a condition. Used by the integration tests and the campaign, which must not take an agent's
// word for where the IP is.

import {execa} from 'execa';
import {canonicalIpText} from '../../agent/net/ip-address.js';
import {describePartlyHeld} from '../../agent/net/service-addresses.js';
import type {Lab, LabHost} from './lab.js';
import {labServiceAddress} from './topology-plan.js';

/**
 * Whether the kernel shows the service address (default the IPv4 lab's; `lab.serviceAddress` for either family) on
 * the host's service interface, usable, and the link is up. An IPv6 address still "tentative" (duplicate address
 * detection running) or "dadfailed" answers no neighbour solicitation: the host does not serve it.
 */
export async function servesAddress(host: Pick<LabHost, 'namespace'>, iface = 'eth0', address = labServiceAddress(4)): Promise<boolean> {
  const {stdout} = await execa('ip', ['-n', host.namespace, '-j', 'addr', 'show', 'dev', iface], {timeout: 10_000});
  const links = JSON.parse(stdout) as Array<{flags: string[]; addr_info: Array<{local: string; tentative?: boolean; dadfailed?: boolean}>}>;
  const wanted = canonicalIpText(address);
  return links.some((link) => link.flags.includes('UP') &&
    link.addr_info.some((a) => canonicalIpText(a.local) === wanted && a.tentative !== true && a.dadfailed !== true));
}

/** A host whose kernel has some of the service's addresses up: `missing` empty is the service held, else a part. */
export interface Holding {
  readonly host: string;
  readonly held: readonly string[];
  readonly missing: readonly string[];
}

/**
 * Each host whose kernel has any of the lab's service addresses up right now (both of a dual-stack service
 * looked at), with which: exactly one host, holding all of them, is the only healthy answer (soleHolder).
 */
export async function holdingsOf(lab: Lab): Promise<Holding[]> {
  const holdings: Holding[] = [];
  for (const host of [lab.hosts.primary, lab.hosts.backup]) {
    const up = await Promise.all(lab.serviceAddresses.map((address) => servesAddress(host, 'eth0', address).catch(() => false)));
    const held = lab.serviceAddresses.filter((_, i) => up[i]);
    if (held.length > 0) holdings.push({host: host.role, held, missing: lab.serviceAddresses.filter((_, i) => !up[i])});
  }
  return holdings;
}

/** The one host that holds the whole service when no other holds any of it; undefined otherwise. */
export function soleHolder(holdings: readonly Holding[]): string | undefined {
  const [only] = holdings;
  return holdings.length === 1 && only !== undefined && only.missing.length === 0 ? only.host : undefined;
}

/** "primary", "primary+backup", "nobody", or a part: "backup (partly held: 192.0.2.100 held, 2001:db8:0:1::100 missing)". */
export function describeHoldings(holdings: readonly Holding[]): string {
  if (holdings.length === 0) return 'nobody';
  return holdings.map((h) => (h.missing.length === 0 ? h.host : `${h.host} (${describePartlyHeld(h.held, h.missing)})`)).join('+');
}

/**
 * Who answers an HTTP request from the client at every service address (both of a dual-stack service, asked at
 * once): "primary" or "backup" when the same host answers at each; undefined when nobody answers at any; else what
 * each answered, e.g. "partly: primary at http://192.0.2.100/, nobody at http://[2001:db8:0:1::100]/", which is no
 * host's name, so a test expecting one host fails and shows it.
 */
export async function whoServes(lab: Lab): Promise<string | undefined> {
  const answers = await Promise.all(lab.serviceUrls.map((url) => servedAt(lab, url)));
  const [first] = answers;
  if (answers.every((answer) => answer === first)) return first;
  return `partly: ${answers.map((answer, i) => `${answer ?? 'nobody'} at ${lab.serviceUrls[i] ?? ''}`).join(', ')}`;
}

/** Who answers an HTTP request to `url` from the client: "primary", "backup", or undefined. */
async function servedAt(lab: Lab, url: string): Promise<string | undefined> {
  // Exits as soon as it has an answer or gave up: a request that timed out may leave a connecting socket that would
  // keep Node alive (SYN retries to an address nobody answers) until execa's timeout. node:http, not fetch: fetch
  // loads undici on first use, inside its own timeout, and on a machine at load 20 that alone took the whole second
  // (a campaign crash case saw "answered by nobody" for 25 s while the holder served).
  const script = "const r=require('node:http').get(process.argv[1],{timeout:3000},(s)=>{let t='';s.on('data',(c)=>{t+=c});" +
    "s.on('end',()=>{process.stdout.write(t);process.exit(0)})});r.on('timeout',()=>process.exit(0));r.on('error',()=>process.exit(0))";
  const {stdout} = await execa('ip', ['netns', 'exec', lab.client.namespace, process.execPath, '-e', script, url], {timeout: 10_000});
  return /served by (\w+)/.exec(stdout)?.[1];
}

/** Polls `probe` every 50 ms until it returns a value; throws naming `what` (and the last error) after `timeoutMs`. */
export async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${lastError === undefined ? '' : ` (${String(lastError)})`}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
