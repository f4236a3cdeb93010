// Part "confirm": traffic that must not confirm a switch. "Free to upgrade" is said only on evidence that clients
// reach the service through the service IP on the new host; here the new host sees everything else: only the
// agents' own health checks, real clients answered 500, requests from its loopback and from its own address, and
// clients of its own address rather than of the service IP. Each switch must roll back with a reason that names
// what was not counted, and leave the IP on the primary, serving. Real clients of the service IP, last, must
// confirm it: the cases above fail for the reason they name, not because nothing could ever confirm.

import {dirname} from 'node:path';
import type {SwitchResult} from '../agent/control-protocol.js';
import {callAgent} from '../cli/control-client.js';
import type {Lab} from '../cli/lab/lab.js';
import {LAB_ADDRESSES} from '../cli/lab/topology-plan.js';
import {startBuiltinWeb, stopProcessByPid} from '../cli/lab/web.js';
import type {CampaignContext, CampaignPart, CaseResult} from './case.js';
import {holderIsSoon, isDone, isRolledBack, outcomeText, said, settledOr} from './fault-kit.js';
import {requestSwitch, withCampaignLab, withClients} from './lab.js';

// Long enough for a few hundred client requests and ~20 health checks to reach the log, short enough to keep the part fast.
const CONFIRM_TIMEOUT_S = 4;

// The agents' HTTP health check of their own server on their own address, every 200 ms: ~20 lines in the window.
const healthCheck = (address: string): string => `health:
  interval_ms: 200
  fall: 3
  rise: 2
  checks:
    - http: { url: http://${address}/, expect_status: 200, timeout_ms: 150 }
`;

/**
 * A switch asked of the primary that must roll back at confirm-traffic with `expected` in its reason; then the
 * primary must hold the IP and serve, and the pair settle.
 */
async function mustRollBack(lab: Lab, name: string, expected: RegExp, run: (ask: () => Promise<SwitchResult | {error: string}>) => Promise<SwitchResult | {error: string}>): Promise<CaseResult> {
  const started = Date.now();
  const result = await run(() => requestSwitch(lab.hosts.primary, {confirmTimeoutS: CONFIRM_TIMEOUT_S}));
  const tookS = ((Date.now() - started) / 1000).toFixed(1);
  const problems: string[] = [];
  if (!isRolledBack(result)) problems.push(`expected a rollback, got ${said(result, 200)}`);
  else if (result.failedStep !== 'confirm-traffic') problems.push(`rolled back at ${result.failedStep ?? '?'}, expected confirm-traffic`);
  else if (!expected.test(result.reason ?? '')) problems.push(`the reason does not match ${expected}`);
  problems.push(...await settledOr(lab, 'after the switch'), ...await holderIsSoon(lab, 'primary', 'after the switch'));
  const reason = isRolledBack(result) ? (result.reason ?? '').replace(/^.*?(\d+ of \d+ client requests)/, '$1') : '';
  return {group: 'confirm', name, ok: problems.length === 0,
    figures: `rolled back in ${tookS} s: "${reason.length > 170 ? `${reason.slice(0, 169)}…` : reason}"; the primary serves`,
    ...(problems.length === 0 ? {} : {detail: `${problems.join('; ')}\n  baton said: ${outcomeText(result)}`})};
}

async function healthOnlyCase(context: CampaignContext): Promise<CaseResult> {
  const hostConfig = {primary: healthCheck(LAB_ADDRESSES.primary.svc), backup: healthCheck(LAB_ADDRESSES.backup.svc)};
  return await withCampaignLab(context, {web: 'builtin', hostConfig}, async (lab) =>
    await mustRollBack(lab, 'no client at all, the agents\' health checks running', /0 of 3 client requests .*not counted: \d+ health checks of this agent/,
      (ask) => ask()));
}

async function evidenceCases(context: CampaignContext): Promise<CaseResult[]> {
  return await withCampaignLab(context, {web: 'builtin'}, async (lab) => {
    const backup = lab.hosts.backup;
    const web = backup.web;
    if (web === undefined) throw new Error('the lab has no web server on the backup');
    const own = `http://${LAB_ADDRESSES.backup.svc}/`;
    const rows: CaseResult[] = [];

    // The backup's server answers 500 to everyone, writing the same log; the healthy one comes back after.
    await stopProcessByPid(web.pid);
    const failing = await startBuiltinWeb({namespace: backup.namespace, dir: dirname(web.accessLog), hostName: 'backup', pageStatus: 500});
    try {
      rows.push(await mustRollBack(lab, 'clients of the service IP, the new host answers 500', /0 of 3 client requests .*\d+ with a status outside 2xx, 3xx/,
        (ask) => withClients(lab, '500', ask)));
    } finally {
      await failing.stop();
    }
    const healthy = await startBuiltinWeb({namespace: backup.namespace, dir: dirname(web.accessLog), hostName: 'backup'});
    try {
      rows.push(await mustRollBack(lab, 'requests from the new host\'s loopback', /0 of 3 client requests .*\d+ from loopback/,
        (ask) => withClients(lab, 'loopback', ask, {namespace: backup.namespace, url: 'http://127.0.0.1/'})));
      rows.push(await mustRollBack(lab, 'requests from the new host\'s own address', /0 of 3 client requests .*\d+ from the two hosts' own addresses/,
        (ask) => withClients(lab, 'own-address', ask, {namespace: backup.namespace, url: own})));
      // The combined log cannot tell these from clients of the service IP; the kernel's count of connections can.
      rows.push(await mustRollBack(lab, 'clients of the new host\'s own address, none of the service IP',
        /client request\(s\) arrived within \d+ s, but the kernel saw no new connection to 192\.0\.2\.100/,
        (ask) => withClients(lab, 'client-own-address', ask, {url: own})));
      rows.push(await clientsConfirm(lab));
    } finally {
      await healthy.stop();
    }
    return rows;
  });
}

/** The control: real clients of the service IP confirm the switch there and the switch back. */
async function clientsConfirm(lab: Lab): Promise<CaseResult> {
  const problems: string[] = [];
  const [there, back] = await withClients(lab, 'service-ip', async () => {
    const first = await requestSwitch(lab.hosts.primary, {confirmTimeoutS: CONFIRM_TIMEOUT_S});
    if (!isDone(first)) return [first, undefined] as const;
    problems.push(...await holderIsSoon(lab, 'backup', 'after the switch'));
    return [first, await requestSwitch(lab.hosts.backup, {confirmTimeoutS: CONFIRM_TIMEOUT_S})] as const;
  });
  if (!isDone(there)) problems.push(`the switch to the backup: ${said(there, 200)}`);
  if (back !== undefined && !isDone(back)) problems.push(`the switch back: ${said(back, 200)}`);
  // The backup gave the IP back in a planned switch: released, until resumed.
  await callAgent(lab.hosts.backup.socket, {id: 'campaign', type: 'resume', peer: false}).catch(() => undefined);
  problems.push(...await settledOr(lab, 'after the switch back'), ...await holderIsSoon(lab, 'primary', 'after the switch back'));
  const confirmed = (result: SwitchResult | {error: string} | undefined): string => (result === undefined ? 'not tried'
    : isDone(result) ? `${result.confirmedRequests ?? 0} requests confirmed, done in ${result.totalMs} ms` : said(result, 80));
  return {group: 'confirm', name: 'control: clients of the service IP confirm both ways', ok: problems.length === 0,
    figures: `there: ${confirmed(there)}; back: ${confirmed(back)}`,
    ...(problems.length === 0 ? {} : {detail: problems.join('; ')})};
}

export const confirmPart: CampaignPart = {
  name: 'confirm',
  about: 'traffic that is no evidence: health checks only, a host answering 500, loopback, the host\'s own address',
  async run(context) {
    return [await healthOnlyCase(context), ...await evidenceCases(context)];
  },
};
