// Renders status reports (and later progress and drill reports) as text for people, or JSON for machines.

import {drainText} from '../agent/plans/coordinator.js';
import {type EtcdStatusReport, type HostLabel, hostText, type StatusReport, type SwitchProgress, type SwitchResult} from '../agent/control-protocol.js';
import {describePartlyHeld} from '../agent/net/service-addresses.js';
import {checkEtcdStatus, checkStatus, partOfService, type StatusCheck} from './status-check.js';

/** The report, after its verdict on the first line (what a monitoring system shows of a check's output). */
/** Where a step runs: a pair's role, or an etcd host's name (it has no role). */
function whereText(host: HostLabel): string {
  return host.role === 'host' ? host.host : host.role;
}

/** `baton status` of a host in etcd mode: its claim on each service, the addresses as observed, etcd and its health. */
export function formatEtcdStatus(status: EtcdStatusReport, check: StatusCheck = checkEtcdStatus(status)): string {
  const {self, etcd} = status;
  const rank = status.hosts.indexOf(self.host);
  const lines: string[] = [check.summary];
  lines.push(`host ${self.host} in etcd mode (${self.hostname}, pid ${self.pid}, baton ${self.version}), number ${rank + 1} of ` +
    `${status.hosts.join(', ')}, up ${formatDuration(self.uptimeMs)}${self.drained === true ? '; DRAINED: it takes no service until `baton resume` here' : ''}`);
  if (self.healthChecks.length > 0) {
    lines.push(`  health      ${self.health}: ${self.healthChecks.map((c) => `${c.name} ${c.ok === false ? `FAILING (${c.detail})` : 'ok'}`).join('; ')}`);
  }
  for (const each of status.services) {
    const {claim, service} = each;
    lines.push(`service ${each.name}${each.hosts.join() === status.hosts.join() ? '' : ` (hosts ${each.hosts.join(', ')})`}`);
    const holder = claim.phase === 'holding' ? `this host, epoch ${claim.epoch}; the address goes in ${formatDuration(claim.deadlineInMs ?? 0)} unless a renewal succeeds`
      : claim.error !== undefined ? `unknown: ${claim.error}`
        : claim.holder === undefined ? 'nobody' : `${claim.holder}, epoch ${claim.epoch}`;
    lines.push(`  claim       ${claim.phase} for ${formatDuration(claim.since.phaseForMs)}; holder: ${holder}` +
      (claim.switching === undefined ? '' : `; switch ${claim.switching} running`));
    const held = each.holdsIp === undefined ? 'cannot tell' : each.holdsIp ? 'held here' : each.held.length > 0 ? `only ${each.held.join(' and ')} held here` : 'not held here';
    lines.push(`  service IP  ${service.addresses.join(' and ')} on ${service.interface} (${service.mode} mode): ${held}`);
    lines.push(`  key         ${each.key}`);
  }
  lines.push(...peerLines(status));
  lines.push(`etcd          ${etcd.endpoints.join(', ')}; prefix ${etcd.prefix}; lease ${etcd.leaseTtlS} s, margin ${etcd.renewMarginMs} ms, on etcd loss ${etcd.onEtcdLoss}; ` +
    `${status.watching ? 'watching for changes' : 'watch broken: polling'}`);
  if (status.control !== undefined) lines.push(`control       ${controlText(status.control)}`);
  return `${lines.join('\n')}\n`;
}

/** The other hosts, as their presence keys and the services' keys said at this host's last look. */
function peerLines(status: EtcdStatusReport): string[] {
  if (status.peersReadMsAgo === undefined) return ['other hosts   not read yet'];
  const width = Math.max(10, ...status.peers.map((peer) => peer.host.length));
  return [`other hosts   as read ${formatDuration(status.peersReadMsAgo)} ago`, ...status.peers.map((peer) => {
    const holds = peer.holds.length > 0 ? `; holds ${peer.holds.join(', ')}` : '';
    const said = peer.present === undefined ? 'unknown: the presence keys could not be read'
      : !peer.present ? 'ABSENT: its agent is not running or does not reach etcd'
        : `present, health ${peer.health === 'ok' ? 'ok' : 'FAILING'} since ${peer.since ?? '?'}, baton ${peer.version ?? '?'}`;
    return `  ${peer.host.padEnd(width)}  ${said}${holds}`;
  })];
}

export function formatStatus(status: StatusReport, check: StatusCheck = checkStatus(status)): string {
  const {self, peer, service, beacons, timers} = status;
  const lines: string[] = [check.summary];
  lines.push(`pair ${status.pair}: this host is the ${self.role} (${self.host}, pid ${self.pid}, baton ${self.version})`);
  lines.push(`  state       ${self.state} for ${formatDuration(self.stateForMs)}: ${self.reason}`);
  lines.push(`  service IP  ${service.addresses.join(' and ')} on ${service.interface} (${service.mode} mode): ${heldText(status)}`);
  if (self.healthChecks.length > 0) {
    lines.push(`  health      ${self.health}: ${self.healthChecks.map((c) => `${c.name} ${c.ok ? 'ok' : `FAILING (${c.detail})`}`).join('; ')}`);
  }
  lines.push(`  epoch       ${self.epoch}, up ${formatDuration(self.uptimeMs)}, boot ${self.bootId}, beacons on ${self.listen}`);
  if (self.rehearsal) lines.push('  rehearsal   aids enabled (rehearsal.enabled): fail-active, drop-link, --pause-after; not for production');
  lines.push(`peer ${peer.role} at ${peer.address}${peer.host === undefined ? '' : ` (${peer.host}${peer.version === undefined ? '' : `, baton ${peer.version}`})`}`);
  if (peer.lastSeenMsAgo === undefined) {
    lines.push('  alive       no: no valid beacon received yet');
  } else {
    lines.push(`  alive       ${peer.alive ? 'yes' : 'NO'}: last valid beacon ${formatDuration(peer.lastSeenMsAgo)} ago`);
    lines.push(`  state       ${peer.state ?? '?'}, health ${peer.health ?? '?'}, epoch ${peer.epoch ?? '?'}, service IP ${peer.holdsIp === true ? 'held there' : 'not held there'} (as it reports)`);
    lines.push(`  link        rtt ${peer.rttMs === undefined ? 'not measured yet' : `${formatMs(peer.rttMs.last)} (avg ${formatMs(peer.rttMs.average)})`}, loss ${peer.loss === undefined ? 'not measured yet' : `${(peer.loss * 100).toFixed(1)} %`}`);
    // Said only while it matters: an agent of baton 0.1.0 cannot tell, and one just heard has not been asked yet.
    if (peer.version === undefined && peer.alive) lines.push('  version     not known yet: its agent has not said (one of baton 0.1.0 cannot)');
  }
  if (!peer.alive && peer.rejectedSinceValid !== undefined) {
    // A peer that sends but is not believed: say why, or the operator hunts a network fault that is not there.
    const {count, reason, detail} = peer.rejectedSinceValid;
    lines.push(`  rejected    ${count} datagram(s) from it since its last valid one, the latest ${reason}: ${detail}`);
  }
  const rejected = Object.entries(beacons.rejected).filter(([, count]) => count > 0);
  lines.push(`beacons       sent ${beacons.sent}, accepted ${beacons.accepted}, rejected ${rejected.length === 0 ? 'none' : rejected.map(([reason, count]) => `${reason} ${count}`).join(', ')}` +
    (beacons.droppedUnread > 0 ? `, dropped unread ${beacons.droppedUnread} (the agent fell behind)` : ''));
  lines.push(`control       ${controlText(status.control)}`);
  lines.push(`timers        interval ${timers.intervalMs} ms, dead after ${timers.deadAfterMs} ms; event loop late by p99 ${formatMs(timers.loopLagMs.p99)}, max ${formatMs(timers.loopLagMs.max)}` +
    (timers.lateBeyondInterval > 0 ? `, ${timers.lateBeyondInterval} tick(s) late by more than an interval` : ''));
  if (status.switching !== undefined) lines.push(`switch        ${status.switching.id} running, this host is the ${status.switching.side}`);
  if (status.lastSwitch !== undefined) {
    lines.push(`last switch   ${status.lastSwitch.id} ${status.lastSwitch.outcome} ${formatDuration(status.lastSwitch.endedMsAgo)} ago: ${status.lastSwitch.reason}`);
  }
  return `${lines.join('\n')}\n`;
}

const STEP_WIDTH = 17;

/** One line per progress event of a switch. */
export function formatProgress(progress: SwitchProgress): string {
  switch (progress.kind) {
    case 'start':
      return `switchover ${progress.switchId}: ${hostText(progress.giver)} -> ${hostText(progress.taker)}, ${progress.mode} mode\n`;
    case 'preflight':
      return `${progress.text.split('\n').filter((l) => l.length > 0).map((l) => `  ${l}`).join('\n')}\n`;
    case 'step': {
      const name = progress.action === 'apply' ? progress.step : `${progress.action} ${progress.step}`;
      const status = progress.status === 'ok' ? 'ok    ' : 'FAILED';
      const detail = progress.detail === undefined ? '' : `  ${progress.detail}`;
      return `  ${name.padEnd(STEP_WIDTH + 5)} on ${whereText(progress.host).padEnd(7)} ${status} ${String(progress.elapsedMs).padStart(6)} ms${detail}\n`;
    }
    case 'waiting': {
      const seen = progress.count < 0 ? 'waiting for the peer to count'
        : progress.step === 'drain-connections' ? `${progress.count} connection(s) left` : `${progress.count} of ${progress.needed} requests`;
      return `  ${progress.step.padEnd(STEP_WIDTH + 5)} on ${whereText(progress.host).padEnd(7)} ...    ${formatDuration(progress.elapsedMs).padStart(9)}  ${seen}\n`;
    }
    case 'note':
      return `  ${progress.text}\n`;
  }
}

/** The end of a switch; the last line is the verdict the runbook asks for. */
export function formatSwitchResult(result: SwitchResult): string {
  switch (result.outcome) {
    case 'dry-run': {
      const lines = [`dry run: ${hostText(result.giver)} -> ${hostText(result.taker)}; nothing was changed. Each host would run:`];
      for (const step of result.plan ?? []) {
        lines.push(`  ${step.step.padEnd(STEP_WIDTH)} on ${whereText(step.host)}: ${step.does}`);
        for (const command of step.commands) lines.push(`      ${command}`);
      }
      return `${lines.join('\n')}\n`;
    }
    case 'done':
      return `switch ${result.switchId} done in ${formatDuration(result.totalMs)}: ${hostText(result.taker)} serves, ${result.confirmedRequests ?? 0} request(s) confirmed in its access log\n` +
        `${hostText(result.giver)} is free to upgrade${result.drain === undefined ? '' : `: ${drainText(result.drain)}`}\n`;
    case 'rolled-back':
      return `${result.rollbackCheck ?? ''}\nrolled back: ${result.reason ?? 'unknown reason'}\n`;
  }
}

/** The control socket's refusals (agent/control-server.ts): "refused none", or each count with its cause. */
function controlText(control: StatusReport['control']): string {
  const counts = [
    [control.refusedBusy, 'over the connection limit'],
    [control.timedOut, 'past the request deadline'],
    [control.extraRequests, 'pipelined second request(s)'],
  ] as const;
  const shown = counts.filter(([count]) => count > 0).map(([count, cause]) => `${count} ${cause}`);
  return `socket refused ${shown.length === 0 ? 'none' : shown.join(', ')}`;
}

function heldText(status: StatusReport): string {
  const holdsIp = status.self.holdsIp;
  const part = partOfService(status);
  if (part !== undefined) return `${describePartlyHeld(part.held, part.missing)} here (observed on the interface)`;
  if (holdsIp === undefined) return 'unknown (not observed)';
  return holdsIp ? 'held here (observed on the interface)' : 'not held here (observed on the interface)';
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 120) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 120) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

function formatMs(ms: number): string {
  return `${ms < 10 ? ms.toFixed(2) : Math.round(ms)} ms`;
}

/** Words filled into lines of at most `width` columns (a word longer than that has a line of its own). */
export function wrapWords(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(line);
  return lines;
}
