// Looking at a lab from outside its agents: which host's kernel has the service address, who answers the client,
// and waiting for a condition. Used by the integration tests and the campaign, which must not take an agent's
// word for where the IP is.

import {execa} from 'execa';
import {canonicalIpText} from '../../agent/net/ip-address.js';
import type {Lab, LabHost} from './lab.js';
import {labServiceAddress} from './topology-plan.js';

/**
 * Whether the kernel shows the service address (default the IPv4 lab's; `lab.serviceAddress` for either family) on
 * the host's service interface, usable, and the link is up. An IPv6 address still "tentative" (duplicate address
 * detection running) or "dadfailed" answers no neighbour solicitation: the host does not serve it.
 */
export async function servesAddress(host: LabHost, iface = 'eth0', address = labServiceAddress(4)): Promise<boolean> {
  const {stdout} = await execa('ip', ['-n', host.namespace, '-j', 'addr', 'show', 'dev', iface], {timeout: 10_000});
  const links = JSON.parse(stdout) as Array<{flags: string[]; addr_info: Array<{local: string; tentative?: boolean; dadfailed?: boolean}>}>;
  const wanted = canonicalIpText(address);
  return links.some((link) => link.flags.includes('UP') &&
    link.addr_info.some((a) => canonicalIpText(a.local) === wanted && a.tentative !== true && a.dadfailed !== true));
}

/** The hosts whose kernel has the service address up right now: exactly one is the only healthy answer. */
export async function holdersOf(lab: Lab): Promise<string[]> {
  const holders: string[] = [];
  for (const host of [lab.hosts.primary, lab.hosts.backup]) {
    if (await servesAddress(host, 'eth0', lab.serviceAddress).catch(() => false)) holders.push(host.role);
  }
  return holders;
}

/** Who answers an HTTP request to the service IP from the client: "primary", "backup", or undefined. */
export async function whoServes(lab: Lab): Promise<string | undefined> {
  // Exits as soon as it has an answer or gave up: a request that timed out may leave a connecting socket that would
  // keep Node alive (SYN retries to an address nobody answers) until execa's timeout. node:http, not fetch: fetch
  // loads undici on first use, inside its own timeout, and on a machine at load 20 that alone took the whole second
  // (a campaign crash case saw "answered by nobody" for 25 s while the holder served).
  const script = "const r=require('node:http').get(process.argv[1],{timeout:3000},(s)=>{let t='';s.on('data',(c)=>{t+=c});" +
    "s.on('end',()=>{process.stdout.write(t);process.exit(0)})});r.on('timeout',()=>process.exit(0));r.on('error',()=>process.exit(0))";
  const {stdout} = await execa('ip', ['netns', 'exec', lab.client.namespace, process.execPath, '-e', script, lab.serviceUrl], {timeout: 10_000});
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
