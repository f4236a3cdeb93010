// What `baton status` exits with: the pair as this agent sees it, judged in the four levels of monitoring plugins
// (exit-codes.ts). Pure. docs/states.md gives STATE_LEVEL and docs/operator-guide.md PROBLEM_LEVEL;
// test/docs.test.ts keeps both tables equal to these.
//
// What this agent knows of the service IP is its own interface, observed while it answers, and the peer's word in
// its last valid beacon: at most a heartbeat interval old while the peer is alive, as old as its silence when not.
// For a dual-stack service (an IPv4 and an IPv6 address that move together) this host sees each address, and so
// whether it holds part of the service; the peer's beacon says only whether it holds all of it.
// The holders are not judged while either host starts (nothing decided yet) or a planned switch runs (the IP is
// on neither host for a few ms by design, and the peer's word can be an interval behind the move).

import type {EtcdServiceStatus, EtcdStatusReport, StatusReport} from '../agent/control-protocol.js';
import {describeError, isBatonError} from '../agent/errors.js';
import {describePartlyHeld} from '../agent/net/service-addresses.js';
import type {AgentStateName} from '../agent/state-machine.js';
import {STATUS_EXIT, type CheckLevel} from './exit-codes.js';

/** Each state, whichever host is in it (the peer's only while it is alive), the pair being fine otherwise. */
export const STATE_LEVEL: Readonly<Record<AgentStateName, 'ok' | 'warning'>> = {
  starting: 'warning',
  active: 'ok',
  standby: 'ok',
  released: 'warning',
  fault: 'warning',
  switching: 'ok',
  stopping: 'warning',
};

export type ProblemCode =
  | 'state' | 'peer-state' | 'ip-on-both' | 'ip-on-neither' | 'ip-partly-held' | 'peer-silent' | 'peer-rejected' | 'health' | 'peer-health'
  | 'agent-unreachable' | 'protocol-mismatch' | 'cannot-check'
  // etcd mode's (checkEtcdStatus):
  | 'ip-without-key' | 'key-without-ip' | 'no-holder' | 'etcd-unreachable' | 'no-failover';

/** The level of each problem; a state's is STATE_LEVEL's. */
export const PROBLEM_LEVEL: Readonly<Record<Exclude<ProblemCode, 'state' | 'peer-state'>, CheckLevel>> = {
  'ip-on-both': 'critical',
  'ip-on-neither': 'critical',
  // One address held and the other not: clients of one family are not served, or the held one answers beside the peer.
  'ip-partly-held': 'critical',
  'agent-unreachable': 'critical',
  'peer-silent': 'warning',
  'peer-rejected': 'warning',
  'health': 'warning',
  'peer-health': 'warning',
  'protocol-mismatch': 'unknown',
  'cannot-check': 'unknown',
  // etcd mode: this host has the address without holding the key, so another host may take it too.
  'ip-without-key': 'critical',
  'key-without-ip': 'critical',
  'no-holder': 'critical',
  'etcd-unreachable': 'warning',
  // etcd mode: no host but the holder is present and healthy, so nobody would take over if the holder failed.
  'no-failover': 'warning',
};

export interface CheckProblem {
  readonly level: CheckLevel;
  readonly code: ProblemCode;
  readonly text: string;
}

export interface StatusCheck {
  readonly level: CheckLevel;
  readonly exitCode: number;
  /** One line, the level first: what a monitoring system shows ("WARNING: the backup (web-b) is in fault"). */
  readonly summary: string;
  /** Worst first. */
  readonly problems: readonly CheckProblem[];
}

// Worse first; unknown (the check could not run) only ever comes alone.
const SEVERITY: Readonly<Record<CheckLevel, number>> = {ok: 0, warning: 1, critical: 2, unknown: 3};

export function checkStatus(status: StatusReport): StatusCheck {
  const {self, peer, service} = status;
  const problems: CheckProblem[] = [];
  const add = (code: ProblemCode, text: string, level: CheckLevel): void => void problems.push({level, code, text});
  const peerName = `the ${peer.role}${peer.host === undefined ? '' : ` (${peer.host})`}`;
  const switching = status.switching !== undefined || self.state === 'switching' || (peer.alive && peer.state === 'switching');
  const deciding = self.state === 'starting' || (peer.alive && peer.state === 'starting');
  const addresses = service.addresses.join(' and ');
  const part = partOfService(status);

  if (!switching && part !== undefined) {
    // Judged like "both": while a host starts too, since a part found then is there, whatever the agent decides.
    add('ip-partly-held', `this host, the ${self.role} (${self.host}), has the service IP ${describePartlyHeld(part.held, part.missing)}`,
      PROBLEM_LEVEL['ip-partly-held']);
    if (peer.alive && peer.holdsIp === true) {
      add('ip-on-both', `${part.held.join(' and ')} is on both hosts: observed here, and ${peerName} reports holding the whole service IP`,
        PROBLEM_LEVEL['ip-on-both']);
    }
  } else if (!switching && self.holdsIp === true && peer.alive && peer.holdsIp === true) {
    add('ip-on-both', `the service IP ${addresses} is on both hosts: observed here, and ${peerName} reports holding it`,
      PROBLEM_LEVEL['ip-on-both']);
  } else if (!switching && !deciding && self.holdsIp === false && peer.holdsIp === false) {
    add('ip-on-neither', `nobody holds the service IP ${addresses}: not observed here, and ${peerName} ` +
      (peer.alive ? 'reports not holding it' : `did not hold it in its last beacon, ${age(peer.lastSeenMsAgo)} ago`), PROBLEM_LEVEL['ip-on-neither']);
  }

  if (!peer.alive) {
    add('peer-silent', peer.lastSeenMsAgo === undefined
      ? `no valid beacon from ${peerName} since this agent started ${age(self.uptimeMs)} ago: no failover`
      : `no valid beacon from ${peerName} for ${age(peer.lastSeenMsAgo)}: no failover`, PROBLEM_LEVEL['peer-silent']);
    const rejected = peer.rejectedSinceValid;
    if (rejected !== undefined) {
      add('peer-rejected', `${rejected.count} datagram(s) from it were rejected since, the latest ${rejected.reason}: ${rejected.detail}`,
        PROBLEM_LEVEL['peer-rejected']);
    }
  } else if (peer.state !== undefined) {
    if (STATE_LEVEL[peer.state] !== 'ok') add('peer-state', stateText(peerName, 'there', peer.state, undefined), STATE_LEVEL[peer.state]);
    if (peer.health === 'failing' && peer.state !== 'fault') add('peer-health', `${peerName}'s health checks fail`, PROBLEM_LEVEL['peer-health']);
  }

  if (STATE_LEVEL[self.state] !== 'ok') add('state', stateText(`this host, the ${self.role} (${self.host}),`, 'here', self.state, self.reason), STATE_LEVEL[self.state]);
  if (self.health === 'failing' && self.state !== 'fault') {
    const failing = self.healthChecks.filter((c) => !c.ok).map((c) => `${c.name} (${c.detail})`).join(', ');
    add('health', `this host's health checks fail: ${failing}`, PROBLEM_LEVEL.health);
  }

  if (problems.length === 0) {
    const holds = (held: boolean | undefined): string => (held === true ? ', holds the service IP' : '');
    return verdict('ok', [], `OK: the ${self.role} (${self.host}) ${self.state}${holds(self.holdsIp)}; ` +
      `${peerName} ${peer.state ?? 'unknown'}${holds(peer.holdsIp)}`);
  }
  return verdict(worst(problems), problems);
}

// A holder takes the address right after it wrote the key, and drops it right before it gives the key up: a status
// asked in between sees one without the other. Judged only once the phase is this old.
const ETCD_SETTLE_MS = 2000;

/**
 * A host in etcd mode, as it sees itself, for each of its services: whether it has the address exactly when it holds
 * the key, whether anyone holds the key, whether it reaches etcd, and whether another host could take over (the hosts'
 * presence keys). It cannot see the other hosts' interfaces; their agents say for them.
 */
export function checkEtcdStatus(status: EtcdStatusReport): StatusCheck {
  const {self} = status;
  const problems: CheckProblem[] = [];
  const add = (code: ProblemCode, text: string): void => void problems.push({level: PROBLEM_LEVEL[code as keyof typeof PROBLEM_LEVEL], code, text});
  for (const each of status.services) {
    const {claim, service, name} = each;
    const addresses = service.addresses.join(' and ');
    // While a planned switch runs the address is on neither host for a few ms, and the giver holds the key without it.
    const settled = claim.since.phaseForMs >= ETCD_SETTLE_MS && claim.switching === undefined;
    const holding = claim.phase === 'holding';
    if (settled && !holding && each.held.length > 0) {
      add('ip-without-key', `this host (${self.host}) has ${each.held.join(' and ')} on ${service.interface} without holding ` +
        `${name}'s key${claim.holder === undefined ? '' : `, which ${claim.holder} holds`}: the address may be on two hosts`);
    }
    if (settled && holding && each.holdsIp === false) {
      add('key-without-ip', `this host (${self.host}) holds ${name}'s key at epoch ${claim.epoch} but not the whole service IP ` +
        `${addresses}${each.held.length > 0 ? ` (only ${each.held.join(' and ')})` : ''}`);
    }
    if (claim.phase === 'standing-by' && claim.error === undefined && claim.holder === undefined && settled) {
      add('no-holder', `nobody holds ${name}'s key (${each.key}): the service IP ${addresses} is on no host`);
    }
    if (claim.error !== undefined) {
      add('etcd-unreachable', `this host cannot read ${name}'s key: ${claim.error}; it does not stand by until it can`);
    }
  }
  if (self.health === 'failing') {
    const failing = self.healthChecks.filter((c) => c.ok === false).map((c) => `${c.name} (${c.detail})`).join(', ');
    add('health', `this host's health checks fail: ${failing}; it does not campaign for ${status.services.length === 1 ? 'the service' : 'any service'}`);
  }
  for (const each of status.services) {
    const noFailover = whyNoFailover(status, each);
    if (noFailover !== undefined) add('no-failover', noFailover);
  }
  if (problems.length === 0) {
    return verdict('ok', [], `OK: ${status.services.map((each) => {
      const {claim, name} = each;
      return claim.phase === 'holding' ? `this host (${self.host}) holds ${name} at epoch ${claim.epoch}, with ${each.service.addresses.join(' and ')}`
        : claim.holder !== undefined ? `${claim.holder} holds ${name} at epoch ${claim.epoch}; this host (${self.host}) stands by`
          : `this host (${self.host}) is ${claim.phase} for ${name}`;
    }).join('; ')}`);
  }
  return verdict(worst(problems), problems);
}

/**
 * Why no host could take a service over from its holder, when none could: every host of the service but the holder is
 * absent (its presence key gone: its agent is down or cut from etcd) or failing. Not judged while this host cannot
 * read the keys, while nobody holds the key (no-holder says more), or before the other hosts had time to write their
 * presence.
 */
function whyNoFailover(status: EtcdStatusReport, service: EtcdServiceStatus): string | undefined {
  const {self} = status;
  const {claim, name} = service;
  const holder = claim.phase === 'holding' ? self.host : claim.holder;
  if (claim.error !== undefined || holder === undefined || status.peersReadMsAgo === undefined || self.uptimeMs < status.etcd.leaseTtlS * 1000) {
    return undefined;
  }
  const others = status.peers.filter((peer) => peer.host !== holder && service.hosts.includes(peer.host));
  if (others.some((peer) => peer.present === undefined)) return undefined;
  const selfCounts = self.host !== holder;
  if ((selfCounts && self.health === 'ok') || others.some((peer) => peer.present === true && peer.health === 'ok')) return undefined;
  const reasons = [
    ...selfCounts ? [`this host (${self.host}) fails its health checks`] : [],
    ...others.map((peer) => `${peer.host} ${peer.present === true ? 'fails its health checks' : 'is absent'}`),
  ];
  const who = holder === self.host ? `this host (${self.host})` : holder;
  return reasons.length === 0
    ? `${who} is the only host of ${name}: nobody would take the service over if it failed`
    : `nobody would take ${name} over if ${who} failed: ${reasons.join(', ')}`;
}

/**
 * The addresses this host holds and misses when it holds some of the service's but not all (dual stack); undefined
 * when it holds all or none, or its agent does not say which (`self.held` absent).
 */
export function partOfService(status: StatusReport): {held: readonly string[]; missing: readonly string[]} | undefined {
  const held = status.self.held;
  if (held === undefined || held.length === 0) return undefined;
  const missing = status.service.addresses.filter((address) => !held.includes(address));
  return missing.length === 0 ? undefined : {held, missing};
}

/** When status could not be asked at all: the agent does not answer (critical), or the question failed (unknown). */
export function checkFailure(error: unknown): StatusCheck {
  const text = describeError(error);
  if (isBatonError(error, 'AGENT_UNREACHABLE') && errnoOf(error.cause) !== 'EACCES') {
    return verdict('critical', [{level: 'critical', code: 'agent-unreachable', text}]);
  }
  const code = isBatonError(error, 'PROTOCOL_MISMATCH') ? 'protocol-mismatch' : 'cannot-check';
  return verdict('unknown', [{level: 'unknown', code, text}]);
}

function verdict(level: CheckLevel, problems: CheckProblem[], summary?: string): StatusCheck {
  const sorted = problems.toSorted((a, b) => SEVERITY[b.level] - SEVERITY[a.level]);
  return {level, exitCode: STATUS_EXIT[level], problems: sorted, summary: summary ?? `${level.toUpperCase()}: ${sorted.map((p) => p.text).join('; ')}`};
}

function worst(problems: readonly CheckProblem[]): CheckLevel {
  return problems.reduce<CheckLevel>((level, p) => (SEVERITY[p.level] > SEVERITY[level] ? p.level : level), 'ok');
}

/** What a state means for the pair, said of the host in it. */
function stateText(who: string, where: 'here' | 'there', state: AgentStateName, reason: string | undefined): string {
  const why = reason === undefined ? '' : ` (${reason})`;
  switch (state) {
    case 'starting':
      return `${who} is starting: its agent has not decided yet`;
    case 'released':
      return `${who} is released: free for maintenance, and nobody stands by until \`baton resume\` ${where}`;
    case 'fault':
      return `${who} is in fault${why}: it never takes the service IP, so nobody stands by`;
    case 'stopping':
      return `${who} is stopping: its agent is going away`;
    case 'active':
    case 'standby':
    case 'switching':
      return `${who} is ${state}`;
  }
}

function age(ms: number | undefined): string {
  if (ms === undefined) return 'an unknown time';
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  return ms < 7_200_000 ? `${Math.round(ms / 60_000)} min` : `${Math.round(ms / 3_600_000)} h`;
}

function errnoOf(cause: unknown): string | undefined {
  const code = (cause as {code?: unknown} | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}
