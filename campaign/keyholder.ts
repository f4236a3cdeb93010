// Part "keyholder": what a holder of the pair's key, or a host on the LAN without it, sends to bend the primary.
// Text with terminal escapes and control bytes in a switch's finish reason (it must reach the log, the hook's
// arguments and the CLI escaped, never raw); an epoch of 2^53 − 1 in a beacon and in a begin request (refused: the
// next takeover and the state file still work); a datagram signed with an accepted key past its `until`; a flood
// of correctly signed beacons from a third address (dropped before any cryptography: the peer stays alive); and the
// rehearsal aids on a primary whose configuration does not enable them, asked locally and by the key holder.

import {randomBytes} from 'node:crypto';
import {chmod, mkdir, readFile, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';
import {execa} from 'execa';
import {nanoid} from 'nanoid';
import type {StatusReport} from '../agent/control-protocol.js';
import {describeError} from '../agent/errors.js';
import {keyIdOf, type Key} from '../agent/config/secret-files.js';
import {encodeMessage, type Beacon, type PeerRequest} from '../agent/peer/beacon-codec.js';
import {callAgent} from '../cli/control-client.js';
import {signalAgent, startAgent, type Lab} from '../cli/lab/lab.js';
import {judgeHolders, watchServiceAddress} from '../cli/lab/address-events.js';
import type {CampaignContext, CampaignPart, CaseResult} from './case.js';
import {holderIsSoon, isDone, said} from './fault-kit.js';
import {forgeSource, kernelUdpDrops, rejectedSince, startSender, statusOf, writePool} from './forge.js';
import {CLI, firstLine, run} from './input.js';
import {checkJournals, requestSwitch, settle, withCampaignLab, withClients} from './lab.js';

// Datagrams from this client port leave with the backup's address (forgeSource): the key holder speaks as the peer.
const AS_BACKUP_PORT = 40413;
// The key holder numbers its datagrams this far ahead of the real backup's (5 beacons a second): newer than anything
// the primary has seen from that run even when the sender takes 2 s to start on a busy machine, and overtaken by the
// real backup within 5 s (until then the primary takes the backup's beacons for late ones and its peer for dead).
const SEQ_AHEAD = 25;
// JavaScript's largest exact integer: an epoch past 2^31 − 1 must be refused wherever it comes in.
const HUGE_EPOCH = Number.MAX_SAFE_INTEGER;
// A hostile reason: clear the screen, red, a bell, a newline and a forged log line, a carriage return, a
// right-to-left override and a C1 control.
const HOSTILE_REASON = '\u001b[2J\u001b[31mPWNED\u0007\nFORGED-LINE baton-agent: (agent) all is well\r\u202eevil\u0085end';
const RAW_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;
// How long the IP is watched after datagrams that must change nothing: beacons, the dead timer and a margin.
const WATCH_MS = 2500;
const FLOOD_RATE = 20_000;
// What a refused rehearsal aid tells the operator to set.
const REHEARSAL_KEY = /rehearsal: \{enabled: true\}/;

interface Attacker {
  readonly lab: Lab;
  readonly context: CampaignContext;
  readonly key: Key;
}

/** The envelope of the key holder's next datagrams, as the backup's live run, ahead of its real sequence. */
async function asBackup(lab: Lab): Promise<{boot: string; to: string; seq: number}> {
  const backup = await statusOf(lab.hosts.backup);
  const primary = await statusOf(lab.hosts.primary);
  return {boot: backup.self.bootId, to: primary.self.bootId, seq: backup.beacons.sent + SEQ_AHEAD};
}

function request(envelope: {boot: string; to: string; seq: number}, offset: number, op: PeerRequest['op'], switchId: string,
  params: PeerRequest['params']): PeerRequest {
  return {pair: 'lab', node: 'backup', boot: envelope.boot, seq: envelope.seq + offset, sentAt: Date.now(), to: envelope.to,
    id: nanoid(), op, switchId, params};
}

/** Sends `datagrams` to the primary as the backup, `perSecond` apart, and waits until they are out and WATCH_MS more. */
async function send(attacker: Attacker, name: string, datagrams: readonly Uint8Array[], perSecond: number): Promise<number> {
  const {lab, context} = attacker;
  const pool = join(context.dir, `keyholder-${name}.bin`);
  await writePool(pool, datagrams);
  const sender = await startSender(lab, context.dir, {name: `keyholder-${name}`, target: lab.hosts.primary, pool, rate: perSecond,
    seconds: datagrams.length / perSecond, port: AS_BACKUP_PORT});
  const sent = await sender.wait(30_000);
  await sleep(WATCH_MS);
  return sent.sent;
}

/** The lines of `file` written after `fromByte`. */
async function linesSince(file: string, fromByte: number): Promise<string> {
  return (await readFile(file)).subarray(fromByte).toString('utf8');
}

async function sizeOf(file: string): Promise<number> {
  return (await readFile(file).catch(() => Buffer.alloc(0))).length;
}

async function hostileTextCase(attacker: Attacker, hookOut: string): Promise<CaseResult> {
  const {lab, key} = attacker;
  const primary = lab.hosts.primary;
  const logFrom = await sizeOf(primary.logFile);
  const hookFrom = await sizeOf(hookOut);
  const before = await statusOf(primary);
  const envelope = await asBackup(lab);
  const switchId = nanoid(10);
  // The primary joins the key holder's switch as the giver, and is told it rolled back, for a reason of the holder's.
  const datagrams = [
    request(envelope, 0, 'begin', switchId, {side: 'giver', epoch: before.self.epoch}),
    request(envelope, 1, 'finish', switchId, {outcome: 'rolled-back', reason: HOSTILE_REASON}),
  ].map((r) => encodeMessage({kind: 'request', request: r}, key));
  // 4 a second: begin's journal is written before finish arrives, both well inside the dead timer.
  await send(attacker, 'text', datagrams, 4);
  const unsettled = await settle(lab);
  const log = await linesSince(primary.logFile, logFrom);
  const hook = await linesSince(hookOut, hookFrom);
  const status = await run(process.execPath, [CLI, 'status', '--socket', primary.socket]);
  const json = JSON.parse((await run(process.execPath, [CLI, 'status', '--json', '--socket', primary.socket])).output) as StatusReport;
  const problems: string[] = [];
  const reached = {log: log.includes('PWNED'), hook: hook.includes('PWNED'), cli: status.output.includes('PWNED')};
  for (const [where, text] of [['log', log], ['hook argument', hook.replaceAll('\u001e', '')], ['baton status', status.output],
    ['baton status --json', json.self.reason]] as const) {
    const raw = RAW_CONTROL.exec(text);
    if (raw !== null) problems.push(`a raw U+${(raw[0].codePointAt(0) ?? 0).toString(16).padStart(4, '0')} reached the ${where}`);
  }
  if (/^FORGED-LINE/m.test(log)) problems.push('the forged log line stands as a line of its own');
  for (const [where, seen] of Object.entries(reached)) if (!seen) problems.push(`the reason never reached the ${where}: the case proves nothing there`);
  if (!log.includes('\\x1b[2J')) problems.push('the log does not show the escape as \\x1b');
  if (unsettled !== undefined) problems.push(unsettled);
  problems.push(...await holderIsSoon(lab, 'primary', 'after the finish'));
  const shown = /\\x1b\[2J[^"]{0,60}/.exec(log)?.[0] ?? '';
  return {group: 'keyholder', name: 'a finish reason with ANSI escapes and control bytes', ok: problems.length === 0,
    figures: `reached the log, the hook's REASON and baton status as "${shown}…", no raw control character in any; the IP stayed`,
    ...(problems.length === 0 ? {} : {detail: `${problems.join('; ')}\n  log: ${JSON.stringify(log.slice(-600))}\n  hook: ${JSON.stringify(hook)}`})};
}

async function hugeEpochCase(attacker: Attacker): Promise<CaseResult> {
  const {lab, key} = attacker;
  const primary = lab.hosts.primary;
  const before = await statusOf(primary);
  const envelope = await asBackup(lab);
  const backupStatus = await statusOf(lab.hosts.backup);
  // The most dangerous beacon there is: the peer holds the IP at an epoch nothing can beat.
  const beacon: Beacon = {pair: 'lab', node: 'backup', boot: envelope.boot, seq: envelope.seq, sentAt: Date.now(), host: backupStatus.self.host,
    state: 'active', epoch: HUGE_EPOCH, holdsIp: true, health: 'ok', switchId: '', ack: undefined};
  const begin = request(envelope, 1, 'begin', nanoid(10), {side: 'giver', epoch: HUGE_EPOCH});
  const addresses = await watchServiceAddress(lab);
  const sent = await send(attacker, 'epoch', [encodeMessage({kind: 'beacon', beacon}, key), encodeMessage({kind: 'request', request: begin}, key)], 4);
  const history = await addresses.stop();
  const after = await statusOf(primary);
  const rejected = rejectedSince(before, after);
  const problems: string[] = [];
  const {final, overlaps} = judgeHolders(history);
  // The real backup's beacons, numbered below the key holder's, were late for a moment: alive again first.
  const unsettledBefore = await settle(lab);
  if (unsettledBefore !== undefined) problems.push(unsettledBefore);
  if (history.events.length > 0 || final.join() !== 'primary' || overlaps.length > 0) problems.push(`the IP moved: ${history.events.map((e) => `${e.host} ${e.change}`).join(', ')}`);
  if (after.self.state !== 'active' || after.self.epoch !== before.self.epoch) problems.push(`the primary is ${after.self.state} at epoch ${after.self.epoch}, was active at ${before.self.epoch}`);
  if ((after.beacons.rejected.malformed ?? 0) <= (before.beacons.rejected.malformed ?? 0)) problems.push(`the beacon was not rejected as malformed (${rejected.byReason})`);
  // The next takeover and the state files still work: a real switch there and back, confirmed by real clients.
  const [there, back] = await withClients(lab, 'after-epoch', async () => {
    const first = await requestSwitch(lab.hosts.primary);
    return [first, isDone(first) ? await requestSwitch(lab.hosts.backup) : first] as const;
  });
  await callAgent(lab.hosts.backup.socket, {id: 'campaign', type: 'resume', peer: false}).catch(() => undefined);
  if (!isDone(there) || !isDone(back)) problems.push(`the switches after it: ${said(there, 120)}; ${said(back, 120)}`);
  const unsettled = await settle(lab);
  if (unsettled !== undefined) problems.push(unsettled);
  const journals = await checkJournals(lab);
  problems.push(...journals.problems, ...await holderIsSoon(lab, 'primary', 'after the switches'));
  const epochs = `${journals.epochs['primary'] ?? '?'}/${journals.epochs['backup'] ?? '?'}`;
  return {group: 'keyholder', name: 'an epoch of 2^53 − 1 in a beacon and in a begin request', ok: problems.length === 0,
    figures: `${sent} sent, beacon rejected (${rejected.byReason}), begin refused; the primary stayed active at epoch ${after.self.epoch}; ` +
      `then a switch there and back: ${isDone(there) && isDone(back) ? 'both done' : 'FAILED'}, state files at epochs ${epochs} (primary/backup)`,
    ...(problems.length === 0 ? {} : {detail: problems.join('; ')})};
}

async function expiredKeyCase(attacker: Attacker, expired: Key): Promise<CaseResult> {
  const {lab} = attacker;
  const primary = lab.hosts.primary;
  const before = await statusOf(primary);
  const envelope = await asBackup(lab);
  const begin = request(envelope, 0, 'begin', nanoid(10), {side: 'giver', epoch: before.self.epoch});
  const sent = await send(attacker, 'expired', [encodeMessage({kind: 'request', request: begin}, expired)], 4);
  const after = await statusOf(primary);
  const rejected = rejectedSince(before, after);
  const expiredCount = (after.beacons.rejected['expired-key'] ?? 0) - (before.beacons.rejected['expired-key'] ?? 0);
  const problems = await holderIsSoon(lab, 'primary', 'after it');
  if (expiredCount !== sent) problems.push(`${sent} sent, ${expiredCount} rejected as expired-key (${rejected.byReason})`);
  if (after.self.state !== 'active') problems.push(`the primary is ${after.self.state}`);
  return {group: 'keyholder', name: 'a begin signed with an accepted key past its until', ok: problems.length === 0,
    figures: `${sent} sent, rejected ${rejected.byReason}; the primary stayed active`,
    ...(problems.length === 0 ? {} : {detail: problems.join('; ')})};
}

async function floodCase(attacker: Attacker, seconds: number): Promise<CaseResult> {
  const {lab, context, key} = attacker;
  const primary = lab.hosts.primary;
  const envelope = await asBackup(lab);
  const backupStatus = await statusOf(lab.hosts.backup);
  // Correctly signed, well-formed beacons of the backup's own run: only the source address gives them away.
  const beacons = Array.from({length: 1000}, (_, i) => encodeMessage({kind: 'beacon', beacon: {pair: 'lab', node: 'backup', boot: envelope.boot,
    seq: envelope.seq + 1_000_000 + i, sentAt: Date.now(), host: backupStatus.self.host, state: 'active', epoch: 1, holdsIp: true, health: 'ok',
    switchId: '', ack: undefined}}, key));
  const pool = join(context.dir, 'keyholder-flood.bin');
  await writePool(pool, beacons);
  const before = await statusOf(primary);
  const dropsBefore = await kernelUdpDrops(context, primary.namespace);
  const sender = await startSender(lab, context.dir, {name: 'keyholder-flood', target: primary, pool, rate: FLOOD_RATE, seconds});
  let samples = 0;
  let alive = 0;
  let busiestMs = 0;
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    const asked = Date.now();
    const status = await statusOf(primary).catch(() => undefined);
    busiestMs = Math.max(busiestMs, Date.now() - asked);
    samples += 1;
    if (status?.peer.alive === true && status.self.state === 'active') alive += 1;
    await sleep(250);
  }
  const sent = await sender.wait(30_000);
  await sleep(500);
  const after = await statusOf(primary);
  const drops = await kernelUdpDrops(context, primary.namespace) - dropsBefore;
  const rejected = rejectedSince(before, after);
  const wrongSource = (after.beacons.rejected['wrong-source'] ?? 0) - (before.beacons.rejected['wrong-source'] ?? 0);
  const unread = after.beacons.droppedUnread - before.beacons.droppedUnread;
  const problems = await holderIsSoon(lab, 'primary', 'after the flood');
  if (alive !== samples) problems.push(`the primary saw the backup alive and itself active in ${alive} of ${samples} samples`);
  if (wrongSource + unread + drops < sent.sent) problems.push(`${sent.sent} sent, ${wrongSource} wrong-source, ${unread} dropped unread, ${drops} kernel drops`);
  if (rejected.total !== wrongSource) problems.push(`rejected for other reasons too: ${rejected.byReason}`);
  return {group: 'keyholder', name: `a flood of signed beacons from a third address, ${FLOOD_RATE.toLocaleString('en')}/s`, ok: problems.length === 0,
    figures: `${sent.sent.toLocaleString('en')} in ${sent.elapsedS.toFixed(1)} s: ${wrongSource.toLocaleString('en')} wrong-source, ${unread} dropped unread, ` +
      `${drops} kernel drops; the backup alive in ${alive}/${samples} samples; status answered within ${busiestMs} ms at worst`,
    ...(problems.length === 0 ? {} : {detail: problems.join('; ')})};
}

/**
 * The primary's configuration stops enabling the rehearsal aids (restarted in place; the IP stays): each aid asked
 * of it, by its operator or by the key holder, is refused naming the key, and its link and the IP stay.
 */
async function rehearsalCases(attacker: Attacker): Promise<CaseResult[]> {
  const {lab, key} = attacker;
  const primary = lab.hosts.primary;
  const config = await readFile(primary.configFile, 'utf8');
  await writeFile(primary.configFile, config.replace('rehearsal: { enabled: true }', 'rehearsal: { enabled: false }'));
  await signalAgent(primary, 'SIGTERM');
  await startAgent(primary, lab);
  const unsettled = await settle(lab);
  if (unsettled !== undefined) throw new Error(`the pair did not settle after the primary restarted without rehearsal aids: ${unsettled}`);
  const rows: CaseResult[] = [];
  const row = async (name: string, said: string, matches: boolean): Promise<void> => {
    const problems = await holderIsSoon(lab, 'primary', 'after it');
    const status = await statusOf(primary);
    if (!matches) problems.push(`not refused as expected: ${said}`);
    if (status.self.state !== 'active' || status.lastSwitch !== undefined) problems.push(`the primary is ${status.self.state}, last switch ${status.lastSwitch?.id ?? 'none'}`);
    const shown = firstLine(said.replaceAll(`${lab.dir}/`, '')).replace(/^baton: /, '').replace(/ \(on a pair kept for rehearsals.*$/, '');
    rows.push({group: 'keyholder', name: `rehearsal aids off: ${name}`, ok: problems.length === 0, figures: `refused: "${shown.slice(0, 160)}"; the IP stayed`,
      ...(problems.length === 0 ? {} : {detail: problems.join('; ')})});
  };

  const fail = await callAgent(primary.socket, {id: 'campaign', type: 'fail-active', seconds: 5}).then(() => 'accepted', (error: unknown) => describeError(error));
  await row('fail-active asked of the primary', fail, REHEARSAL_KEY.test(fail) && fail.includes(primary.configFile));
  const fromBackup = await callAgent(lab.hosts.backup.socket, {id: 'campaign', type: 'fail-active', seconds: 5}).then(() => 'accepted', (error: unknown) => describeError(error));
  await row('fail-active asked of the backup, which asks the primary', fromBackup, REHEARSAL_KEY.test(fromBackup) && fromBackup.includes(primary.configFile));
  const pause = await run(process.execPath, [CLI, 'switchover', '--pause-after', 'assign-ip:5', '--socket', primary.socket]);
  await row('switchover --pause-after', pause.output, pause.exitCode === 1 && REHEARSAL_KEY.test(pause.output));
  const rehearse = await run(process.execPath, [CLI, 'rehearse', '--with-failure', '--socket', primary.socket, '--report', join(attacker.context.dir, 'rehearse.html')]);
  await row('rehearse --with-failure, refused before any step', rehearse.output,
    rehearse.exitCode === 1 && /the primary \(\S+\) does not enable them: .*\(rehearsal\.enabled\)/.test(rehearse.output));
  // Run on the backup, which enables them: only the primary's answer to the rehearsal peer request can refuse it.
  const fromPeer = await run(process.execPath, [CLI, 'rehearse', '--with-failure', '--socket', lab.hosts.backup.socket, '--report', join(attacker.context.dir, 'rehearse-backup.html')]);
  await row('rehearse --with-failure on the backup, refused before any step for its peer', fromPeer.output,
    fromPeer.exitCode === 1 && /the primary \(\S+\) does not enable them: .*\(rehearsal\.enabled\)/.test(fromPeer.output) && !/the backup \(/.test(fromPeer.output));
  // The key holder asks for the link drop itself. Its reply, an error, goes to the real backup; the primary logs the
  // refusal, and its link and the IP stay.
  const logFrom = await sizeOf(primary.logFile);
  const addresses = await watchServiceAddress(lab);
  const envelope = await asBackup(lab);
  await send(attacker, 'drop-link', [encodeMessage({kind: 'request', request: request(envelope, 0, 'drop-link', '', {seconds: 30})}, key)], 4);
  const history = await addresses.stop();
  const refusal = (await linesSince(primary.logFile, logFrom)).split('\n').find((l) => l.includes('refused the peer\'s drop-link')) ?? '';
  const link = String((await execa('ip', ['-n', primary.namespace, '-o', 'link', 'show', 'dev', 'eth0'], {reject: false})).stdout);
  const up = /[<,]UP[,>]/.test(link);
  await row('drop-link from the key holder', `link ${up ? 'still up' : 'DOWN'}, ${history.events.length} address events; logged ` +
    `${refusal.replace(/^\S+ \w+ +/, '').replace(/: the peer's drop-link \(baton rehearse --with-failure\)/, ':')}`,
    refusal !== '' && REHEARSAL_KEY.test(refusal) && up && history.events.length === 0);
  return rows;
}

export const keyholderPart: CampaignPart = {
  name: 'keyholder',
  about: 'a key holder\'s hostile text and huge epochs, an expired key, a signed flood from a third address, rehearsal aids where they are off',
  async run(context) {
    // An old key the primary still lists, whose acceptance ended long ago; and a hook recording its REASON argument.
    const old = randomBytes(32);
    const oldFile = join(context.dir, 'keyholder-old-secret');
    await writeFile(oldFile, old, {mode: 0o600});
    await chmod(context.dir, 0o755);
    const out = join(context.dir, 'keyholder-out');
    await mkdir(out, {recursive: true});
    await chmod(out, 0o777);
    const hookOut = join(out, 'reasons');
    const hook = join(context.dir, 'keyholder-hook.sh');
    // Each REASON ends with U+001E, so a newline inside one would show.
    await writeFile(hook, `#!/bin/sh\nprintf '%s\\036' "$3" >> '${hookOut}'\n`);
    await chmod(hook, 0o755);
    const primaryConfig = `accept_secret_files:\n  - {path: ${oldFile}, until: 2020-01-01}\nhooks:\n  on_state_change: ${hook}\n`;
    return await withCampaignLab(context, {hostConfig: {primary: primaryConfig}}, async (lab) => {
      const secret = new Uint8Array(await readFile(join(lab.dir, 'secret')));
      const attacker: Attacker = {lab, context, key: {id: keyIdOf(secret), secret, file: '-'}};
      await forgeSource(context, lab, lab.hosts.primary, lab.hosts.backup, AS_BACKUP_PORT);
      const rows = [
        await hostileTextCase(attacker, hookOut),
        await hugeEpochCase(attacker),
        await expiredKeyCase(attacker, {id: keyIdOf(old), secret: old, file: '-'}),
        await floodCase(attacker, context.fast ? 5 : 20),
      ];
      rows.push(...await rehearsalCases(attacker));
      return rows;
    });
  },
};
