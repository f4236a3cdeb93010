// Unplanned failover: the active host's service link is cut while a client probes every 10 ms; the longest gap
// between successful responses is the outage a client saw. Each run cuts whichever host is active, then brings
// its link back (it returns as standby), so runs alternate direction without a planned switch in between.

import {setTimeout as sleep} from 'node:timers/promises';
import {join} from 'node:path';
import type {Lab} from '../cli/lab/lab.js';
import type {StatusReport} from '../agent/control-protocol.js';
import {setHostLink, waitForSettledPair} from '../cli/lab/lab.js';
import {startServiceProbers} from '../cli/lab/probe-control.js';
import {summarizeStreams} from '../cli/lab/probe-report.js';

export interface FailoverSample {
  readonly label: string;
  readonly gapMs: number;
  readonly failed: number;
}

const PROBE_INTERVAL_MS = 10;
const PROBE_TIMEOUT_MS = 50;
const MARGIN_MS = 300;


export async function measureFailovers(lab: Lab, runs: number, dir: string, tag: string): Promise<FailoverSample[]> {
  const samples: FailoverSample[] = [];
  for (let i = 1; i <= runs; i += 1) {
    const status = await readyForCut(lab);
    const active = status.primary.self.holdsIp === true ? lab.hosts.primary : lab.hosts.backup;
    const other = active === lab.hosts.primary ? lab.hosts.backup : lab.hosts.primary;
    const prober = await startServiceProbers({urls: lab.serviceUrls, families: lab.serviceFamilies}, {namespace: lab.client.namespace,
      intervalMs: PROBE_INTERVAL_MS, timeoutMs: PROBE_TIMEOUT_MS, durationS: 20, maxProbes: 2000,
      out: (stream) => join(dir, `${tag}-${i}${stream === undefined ? '' : `-${stream}`}.jsonl`)});
    // Done when the other host has answered each service address (both of a dual-stack service).
    const streams = lab.serviceUrls.length;
    try {
      await sleep(MARGIN_MS);
      const cutAt = Date.now();
      await setHostLink(active, 'eth0', false);
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline) {
        const records = await prober.read();
        if (new Set(records.filter((r) => r.ok && r.host === other.role && r.sentAt > cutAt).map((r) => r.stream)).size === streams) break;
        await sleep(50);
      }
      await sleep(MARGIN_MS);
      const summary = summarizeStreams(await prober.stop(), cutAt - MARGIN_MS, Date.now());
      samples.push({label: `${tag} ${active.role} cut`, gapMs: summary.longestGapMs, failed: summary.failed});
    } finally {
      await prober.stop();
      // Back up with the host's own addresses, which a link down takes in IPv6, as its network configuration would.
      await setHostLink(active, 'eth0', true);
    }
  }
  await waitForSettledPair(lab, 20_000);
  return samples;
}

/**
 * A settled pair whose other host stands by, ready to take over. A settled pair may still have the host whose link the
 * last run cut in `fault`: it leaves fault at its next look at the interface (once a second), and a cut before that
 * measured its wait, not a takeover (seen in the taker's log as fault -> standby, then a takeover with a fresh probe).
 */
async function readyForCut(lab: Lab): Promise<{primary: StatusReport; backup: StatusReport}> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const status = await waitForSettledPair(lab, 20_000);
    const standby = status.primary.self.holdsIp === true ? status.backup : status.primary;
    if (standby.self.state === 'standby') return status;
    if (Date.now() > deadline) throw new Error(`the pair's other host is ${standby.self.state}, not standby, 20 s after the last run`);
    await sleep(100);
  }
}
