// Pure: which access-log lines prove that a client reached the service through the service IP on this host, and
// why the others do not. confirm-traffic counts only the first kind; when it times out, the count of the others by
// reason is what tells the operator what happened ("12 health checks of this agent, 3 answered 500").
//
// Not evidence:
//   loopback      127.0.0.0/8 and ::1: the host talking to itself (a local health check, a cron job, a curl)
//   own-address   an address of this host or of its peer: the pair's own probes and checks, a monitoring script
//                 run on either host
//   service-ip    a request whose client is the service IP itself: this host reaching its own service address
//   health-check  the agent's own HTTP health checks (user agent HEALTH_CHECK_USER_AGENT), wherever they come from
//   status        a status outside confirm.statuses (default 2xx and 3xx): a host answering 500 is not serving
//   elsewhere     sent to another address of this host, where the log shows it (nginx $server_addr, Apache %A):
//                 a client of the host, not of the service IP

import {canonicalAddress, type AccessLogEntry} from './access-log.js';

export const EXCLUSIONS = ['loopback', 'own-address', 'service-ip', 'health-check', 'elsewhere', 'status'] as const;
export type Exclusion = (typeof EXCLUSIONS)[number];

/** The user agent of the agent's HTTP health checks, so that their lines in the access log are known as such. */
export const HEALTH_CHECK_USER_AGENT = 'baton-health-check';

/** An inclusive range of HTTP statuses, e.g. 200..299. */
export interface StatusRange {
  readonly from: number;
  readonly to: number;
}

/** confirm.statuses when the config says nothing: success and redirection. */
export const DEFAULT_STATUSES: readonly StatusRange[] = [{from: 200, to: 299}, {from: 300, to: 399}];

export interface EvidenceRules {
  /** This host's and its peer's addresses (any spelling; compared canonically). */
  readonly ownAddresses: readonly string[];
  /** The service's addresses (dual stack: both): a request to either is one to the service. */
  readonly serviceAddresses: readonly string[];
  readonly statuses: readonly StatusRange[];
}

/** Running counts: lines that are evidence, and the others by reason. */
export interface RequestTally {
  readonly counted: number;
  readonly excluded: Readonly<Record<Exclusion, number>>;
}

export function emptyTally(): RequestTally {
  return {counted: 0, excluded: Object.fromEntries(EXCLUSIONS.map((why) => [why, 0])) as Record<Exclusion, number>};
}

/** A judge for one set of rules (addresses canonicalised once): why `entry` is not evidence, or undefined if it is. */
export function createJudge(rules: EvidenceRules): (entry: AccessLogEntry) => Exclusion | undefined {
  const service = new Set(rules.serviceAddresses.map(canonicalAddress));
  const own = new Set(rules.ownAddresses.map(canonicalAddress).filter((address) => !service.has(address)));
  return (entry) => {
    // The health check's own lines first: it may run through the service IP or a host address, and its reason is
    // the one the operator needs to hear ("your only traffic was the agent's own checks").
    if (entry.userAgent === HEALTH_CHECK_USER_AGENT) return 'health-check';
    const client = canonicalAddress(entry.client);
    if (isLoopback(client)) return 'loopback';
    if (service.has(client)) return 'service-ip';
    if (own.has(client)) return 'own-address';
    if (entry.local !== undefined && !service.has(canonicalAddress(entry.local))) return 'elsewhere';
    if (!rules.statuses.some((range) => entry.status >= range.from && entry.status <= range.to)) return 'status';
    return undefined;
  };
}

/** `tally` with one more line, counted or excluded. */
export function addToTally(tally: RequestTally, exclusion: Exclusion | undefined): RequestTally {
  if (exclusion === undefined) return {...tally, counted: tally.counted + 1};
  return {...tally, excluded: {...tally.excluded, [exclusion]: tally.excluded[exclusion] + 1}};
}

/** "200-299" style, with 2xx for a whole class: how confirm.statuses is written back in messages. */
export function describeStatuses(statuses: readonly StatusRange[]): string {
  return statuses.map(({from, to}) => {
    if (from === to) return String(from);
    if (from % 100 === 0 && to === from + 99) return `${from / 100}xx`;
    return `${from}-${to}`;
  }).join(', ');
}

/**
 * What was not counted and why, for the operator, e.g. "not counted: 12 health checks of this agent, 3 with a status
 * outside 2xx, 3xx"; '' when nothing was left out.
 */
export function describeExclusions(tally: RequestTally, statuses: readonly StatusRange[]): string {
  const parts: string[] = [];
  const add = (reason: Exclusion, text: string): void => {
    const n = tally.excluded[reason];
    if (n > 0) parts.push(`${n} ${text}`);
  };
  add('health-check', 'health checks of this agent');
  add('loopback', 'from loopback (this host itself)');
  add('service-ip', 'from the service IP itself');
  add('own-address', 'from the two hosts\' own addresses');
  add('elsewhere', 'sent to another address of this host');
  add('status', `with a status outside ${describeStatuses(statuses)}`);
  return parts.length === 0 ? '' : `not counted: ${parts.join(', ')}`;
}

function isLoopback(canonical: string): boolean {
  return canonical === '::1' || /^127\.\d+\.\d+\.\d+$/.test(canonical);
}
