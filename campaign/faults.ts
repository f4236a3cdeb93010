// Part "faults": the host breaks under a running pair, each fault in its own lab with a client requesting the
// service IP every 50 ms: the taker's interface renamed mid-switch, its access log deleted or rotated during
// confirm-traffic, its journal's filesystem gone read-only, one agent's wall clock stepped by an hour, and the
// peer agent restarted mid-switch. Whatever baton does, each case ends with exactly one kernel holding the IP and
// the client served by it, and the row says what baton did. This file is the table of cases and the part that
// runs them; the cases are in faults-switch.ts, faults-host.ts and faults-peer.ts, their tools in fault-kit.ts.

import {describeError} from '../agent/errors.js';
import type {CampaignContext, CampaignPart, CaseResult} from './case.js';
import type {Verdict} from './fault-kit.js';
import {clockStepped, journalReadOnly} from './faults-host.js';
import {dnsUnreachable, peerRestarted} from './faults-peer.js';
import {accessLogFault, interfaceRenamed, QUICK_CONFIRM, SLOW_CONFIRM} from './faults-switch.js';

interface FaultCase {
  readonly name: string;
  run(context: CampaignContext): Promise<Verdict>;
}

export const faultsPart: CampaignPart = {
  name: 'faults',
  about: 'host faults under a running pair: interface renamed, access log deleted/rotated, journal read-only, clock stepped, peer restarted, DNS unreachable',
  async run(context) {
    const rows: CaseResult[] = [];
    // The fast subset is every case: the whole part takes about a minute (one small lab per case, seconds each).
    for (const fault of FAULTS) {
      context.say(`faults: ${fault.name}`);
      const started = Date.now();
      let verdict: Verdict;
      try {
        verdict = await fault.run(context);
      } catch (error) {
        verdict = {ok: false, figures: 'could not run', detail: describeError(error)};
      }
      const seconds = `${((Date.now() - started) / 1000).toFixed(0)} s`;
      rows.push({group: 'faults', name: fault.name, ok: verdict.ok, figures: `${verdict.figures}; ${seconds}`,
        ...(verdict.detail === undefined ? {} : {detail: verdict.detail})});
    }
    return rows;
  },
};

const FAULTS: readonly FaultCase[] = [
  {name: 'ip fails: taker interface renamed mid-switch', run: interfaceRenamed},
  {name: 'access log deleted during confirm-traffic', run: (c) => accessLogFault(c, 'delete', QUICK_CONFIRM)},
  {name: 'access log deleted, confirmation outlasting 5 s', run: (c) => accessLogFault(c, 'delete', SLOW_CONFIRM)},
  {name: 'access log rotated (rename + reopen) during confirm', run: (c) => accessLogFault(c, 'rename', QUICK_CONFIRM)},
  {name: 'access log rotated (copytruncate) during confirm', run: (c) => accessLogFault(c, 'copytruncate', QUICK_CONFIRM)},
  {name: 'journal filesystem read-only: before and mid-switch', run: journalReadOnly},
  {name: 'one agent\'s wall clock stepped by ±1 h', run: clockStepped},
  {name: 'peer agent restarted mid-switch (new boot id)', run: peerRestarted},
  {name: 'name server unreachable on the backup during switches', run: dnsUnreachable},
];
