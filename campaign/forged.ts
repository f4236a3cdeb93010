// Part "forged": datagrams that ask the host holding the IP to let go of it, and must not move it. Requests to
// begin a switch, take the address down or drop the link, signed with a wrong key; the real datagrams of a real
// switch, captured on the wire and replayed (as the peer, to a live agent and after the peer restarted); and
// correctly signed datagrams from a third address. After each, the IP must still be on the primary, the primary
// still active at the same epoch, and every datagram counted as rejected.

import {randomBytes} from 'node:crypto';
import {readFile} from 'node:fs/promises';
import {join} from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';
import {nanoid} from 'nanoid';
import {encodeMessage, type PeerRequest} from '../agent/peer/beacon-codec.js';
import {keyIdOf, type Key} from '../agent/config/secret-files.js';
import {callAgent} from '../cli/control-client.js';
import {signalAgent, startAgent, type Lab} from '../cli/lab/lab.js';
import {spawnInNamespace} from '../cli/lab/namespaces.js';
import {judgeHolders, watchServiceAddress} from '../cli/lab/address-events.js';
import {stopProcessByPid} from '../cli/lab/web.js';
import type {CampaignContext, CampaignPart, CaseResult} from './case.js';
import {forgeSource, rejectedSince, startSender, statusOf, udpPayloadsOfPcap, writePool} from './forge.js';
import {describeSwitch, requestSwitch, settle, startLabProbers, withCampaignLab} from './lab.js';

// Datagrams from this client port leave with the backup's address (forgeSource).
const AS_BACKUP_PORT = 40412;
// How long the IP is watched after the last forged datagram: several beacon intervals and a dead timer.
const WATCH_MS = 2500;

/** Requests that would take the IP from the primary if they were believed, from the backup's current boot. */
function releaseRequests(boot: string, to: string, seq: number): PeerRequest[] {
  const envelope = {pair: 'lab', node: 'backup' as const, boot, sentAt: Date.now(), to};
  const switchId = nanoid(10);
  return [
    {...envelope, seq, id: nanoid(), op: 'begin', switchId, params: {side: 'giver', epoch: 999}},
    {...envelope, seq: seq + 1, id: nanoid(), op: 'apply', switchId, params: {step: 'primary-net-down'}},
    {...envelope, seq: seq + 2, id: nanoid(), op: 'drop-link', switchId: '', params: {seconds: 60}},
    {...envelope, seq: seq + 3, id: nanoid(), op: 'finish', switchId, params: {outcome: 'done', reason: 'forged'}},
  ];
}

/**
 * Sends `datagrams` to the primary (as the backup when `forged`, else from the client's own address) and watches
 * the kernels until WATCH_MS after the last one. Passes when the primary alone held the IP throughout, is still
 * active at the same epoch, still sees the real backup alive, and rejected exactly what was sent.
 */
async function attack(context: CampaignContext, lab: Lab, name: string, datagrams: readonly Uint8Array[], forged: boolean): Promise<CaseResult> {
  const primary = lab.hosts.primary;
  const pool = join(context.dir, `forged-${nanoid(6)}.bin`);
  await writePool(pool, datagrams);
  // Each kernel's own address events, from before the first datagram to the end of the watch: the IP must not move.
  const addresses = await watchServiceAddress(lab);
  const before = await statusOf(primary);
  const sender = await startSender(lab, context.dir, {name: `forged-${nanoid(6)}`, target: primary, pool, rate: datagrams.length, seconds: 1,
    ...(forged ? {port: AS_BACKUP_PORT} : {})});
  await sleep(1000 + WATCH_MS);
  const sent = await sender.wait(10_000);
  const history = await addresses.stop();
  const {final, overlaps} = judgeHolders(history);
  const after = await statusOf(primary);
  const rejected = rejectedSince(before, after);
  const problems: string[] = [];
  if (history.events.length > 0 || final.join() !== 'primary' || overlaps.length > 0) {
    problems.push(`the IP moved: ${history.events.map((e) => `${e.host} ${e.change}`).join(', ') || 'no event'}, held at the end by ${final.join('+') || 'nobody'}`);
  }
  if (after.self.state !== 'active' || after.self.epoch !== before.self.epoch) problems.push(`the primary is ${after.self.state} at epoch ${after.self.epoch} (was active at ${before.self.epoch})`);
  if (sent.sent !== datagrams.length) problems.push(`only ${sent.sent} of ${datagrams.length} sent: ${sent.lastError}`);
  if (rejected.total !== sent.sent) problems.push(`${sent.sent} sent, ${rejected.total} rejected (${rejected.byReason})`);
  if (!after.peer.alive) problems.push('the primary no longer sees the real backup alive');
  return {
    group: 'forged', name, ok: problems.length === 0,
    figures: `${sent.sent} sent ${forged ? 'as the backup' : 'from 192.0.2.20'}, rejected ${rejected.total} (${rejected.byReason}); ` +
      `IP on the primary throughout (${history.events.length} address events in the kernels), epoch ${after.self.epoch}`,
    ...(problems.length === 0 ? {} : {detail: problems.join('; ')}),
  };
}

/** A real switch asked of the backup (so the backup sends the primary its begin and primary-net-down), and back. */
async function captureRealSwitch(context: CampaignContext, lab: Lab): Promise<{datagrams: Uint8Array[]; switches: string}> {
  const capture = join(process.env["BATON_KEEP_CAPTURE"] ?? context.dir, "switch.pcap");
  const tcpdump = await spawnInNamespace(lab.hosts.primary.namespace, 'tcpdump',
    ['-i', 'eth0', '--immediate-mode', '-U', '-w', capture, 'udp', 'and', 'dst', 'port', '7411', 'and', 'src', 'host', lab.hosts.backup.address], `${capture}.log`);
  const switches: string[] = [];
  try {
    await sleep(1000);
    switches.push(describeSwitch(await requestSwitch(lab.hosts.backup)));
    await settle(lab);
  } finally {
    await stopProcessByPid(tcpdump);
  }
  switches.push(describeSwitch(await requestSwitch(lab.hosts.backup)));
  await callAgent(lab.hosts.backup.socket, {id: 'campaign', type: 'resume', peer: false});
  const unsettled = await settle(lab);
  if (unsettled !== undefined) throw new Error(`the pair did not settle after the captured switch: ${unsettled}`);
  const datagrams = udpPayloadsOfPcap(await readFile(capture));
  // Kind 2 in the header: the peer requests (begin, apply, finish…) among the beacons and replies.
  if (!datagrams.some((d) => d[3] === 2)) throw new Error(`the capture holds no peer request (${datagrams.length} datagrams; switches: ${switches.join('; ')})`);
  return {datagrams, switches: switches.join('; ')};
}

export const forgedPart: CampaignPart = {
  name: 'forged',
  about: 'requests to release the IP: wrong key, replayed from a real switch, from a third address',
  async run(context) {
    // A wide clock skew window, as an operator with poorly synchronised clocks might set: replays must be stopped
    // by sequence numbers and boot ids, not by their age.
    return await withCampaignLab(context, {extraConfig: 'heartbeat: { max_clock_skew_ms: 600000 }'}, async (lab) => {
      const prober = await startLabProbers(lab, {intervalMs: 50, timeoutMs: 200,
        durationS: 120, maxProbes: 2400, out: join(context.dir, 'forged-probes.jsonl')});
      try {
        await forgeSource(context, lab, lab.hosts.primary, lab.hosts.backup, AS_BACKUP_PORT);
        const secret = new Uint8Array(await readFile(join(lab.dir, 'secret')));
        const real: Key = {id: keyIdOf(secret), secret, file: '-'};
        const guessed: Key = {id: real.id, secret: randomBytes(32), file: '-'};
        const strangerSecret = randomBytes(32);
        const stranger: Key = {id: keyIdOf(strangerSecret), secret: strangerSecret, file: '-'};
        const boot = (await statusOf(lab.hosts.backup)).self.bootId;
        const to = (await statusOf(lab.hosts.primary)).self.bootId;
        const sign = (key: Key, requests: PeerRequest[]): Uint8Array[] => requests.map((request) => encodeMessage({kind: 'request', request}, key));
        const rows: CaseResult[] = [];

        rows.push(await attack(context, lab, 'release requests, real key id, wrong secret', sign(guessed, releaseRequests(boot, to, 1_000_000)), true));
        rows.push(await attack(context, lab, 'release requests, a key the pair does not have', sign(stranger, releaseRequests(boot, to, 1_000_100)), true));

        const captured = await captureRealSwitch(context, lab);
        context.say(`captured ${captured.datagrams.length} datagrams from the backup during a real switch (${captured.switches})`);
        rows.push(await attack(context, lab, 'a real switch replayed as the backup', captured.datagrams, true));
        rows.push(await attack(context, lab, 'a real switch replayed from a third address', captured.datagrams, false));
        rows.push(await attack(context, lab, 'correctly signed release requests from a third address', sign(real, releaseRequests(boot, to, 2_000_000)), false));

        // The backup restarts: its old boot is over, and its captured datagrams must not pass as a "new" boot.
        await signalAgent(lab.hosts.backup, 'SIGTERM');
        await startAgent(lab.hosts.backup, lab);
        const restarted = await settle(lab);
        if (restarted !== undefined) throw new Error(`the pair did not settle after the backup restarted: ${restarted}`);
        rows.push(await attack(context, lab, 'a real switch replayed after the backup restarted', captured.datagrams, true));

        // The primary restarts (on_stop keep: the IP stays) and has forgotten the backup's sequence numbers. The
        // skew window of this lab is 10 minutes, so time does not stop the replay: the requests name the
        // primary's old boot, and the beacons come from a backup boot older than the live one.
        await signalAgent(lab.hosts.primary, 'SIGTERM');
        await startAgent(lab.hosts.primary, lab);
        const primaryBack = await settle(lab);
        if (primaryBack !== undefined) throw new Error(`the pair did not settle after the primary restarted: ${primaryBack}`);
        rows.push(await attack(context, lab, 'a real switch replayed after the primary restarted', captured.datagrams, true));
        return rows;
      } finally {
        await prober.stop();
      }
    });
  },
};
