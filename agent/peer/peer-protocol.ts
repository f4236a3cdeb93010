// The operations one agent asks of the other: for each, its parameters and its result, and the one decoder that
// turns a request's JSON params into typed ones or refuses them with BAD_REQUEST.
//
// The beacon codec has already checked the MAC, the envelope and that params is a small JSON object; what each
// field means, and which values are acceptable, is decided here. The requester (peer-requests.ts) sends typed
// params; the answering side (switch-runner.ts, agent.ts) reads them only through decodePeerParams.

import {BatonError} from '../errors.js';
import {EPOCH_EXPECTED, isEpoch} from '../epoch.js';
import type {AgentStateName} from '../state-machine.js';
import {SWITCH_STEP_NAMES, type SwitchSide, type SwitchStepName} from '../plans/plans.js';
import type {JsonObject} from './beacon-codec.js';
import {MAX_DROP_S} from '../rehearsal.js';
import {parseIpAddress} from '../net/ip-address.js';
import {sanitizePeerText} from './peer-text.js';
import {decodeHostAddresses} from './host-addresses.js';


/** No fields: whatever a request of this op carries is ignored. */
export type NoFields = {readonly [key: string]: never};

// Type aliases, not interfaces: an object type alias is assignable to JsonObject, so params go on the wire as is.
export type StepParams = {readonly step: SwitchStepName};
/**
 * The giver's own address(es) that forward-strays sends to: one address, as baton has always sent it, or, for a
 * dual-stack service, a list of one IPv4 and one IPv6 address (an agent older than dual stack never gets a list:
 * it has no dual-stack service to switch).
 */
export type GiverAddress = string | readonly string[];
/** giverAddress: the address(es) forward-strays would send to, for a taker's dry run. */
export type PlanParams = {readonly step: SwitchStepName; readonly giverAddress?: GiverAddress};
/**
 * giverAddress: given to a taker whose switch drains (forward-strays sends there what is not its own). addresses: the
 * coordinator's own addresses (host-addresses.ts), which the confirmation there does not count as clients.
 */
export type BeginParams = {readonly side: SwitchSide; readonly epoch: number; readonly giverAddress?: GiverAddress; readonly addresses?: readonly string[]};
/** addresses: the answering host's own addresses, for the coordinator's confirmation; absent from an older agent. */
export type BeginResult = {readonly addresses?: readonly string[]};
export type DrainParams = {readonly timeoutMs: number};
/** unlessHeld: the giver takes the IP back only when it is free (see SwitchParticipant.undo). */
export type UndoParams = {readonly step: SwitchStepName; readonly unlessHeld: boolean};
export type ConfirmParams = {readonly needed: number; readonly timeoutMs: number};
/** 'interrupted' is never asked of the peer: each host decides that alone. */
export type FinishParams = {readonly outcome: 'done' | 'rolled-back'; readonly reason: string};
export type DropLinkParams = {readonly seconds: number};

/**
 * Each operation, what it is sent with and what its answer carries. A result is the peer's word: the requester
 * gets it as a JsonObject and checks what it reads (parseHostInfo, confirm's count).
 */
export interface PeerOps {
  /** The host's software base and load, for preflight. Result: encodeHostInfo's object. */
  readonly 'host-info': {readonly params: NoFields; readonly result: JsonObject};
  /** Whether confirm-traffic can work on that host. */
  readonly 'check-log': {readonly params: NoFields; readonly result: NoFields};
  /** The host's commands for one step, recorded, for --dry-run. Result: a DryRunStep. */
  readonly 'plan': {readonly params: PlanParams; readonly result: JsonObject};
  readonly 'begin': {readonly params: BeginParams; readonly result: BeginResult};
  /** Whether the host can drain, and its own address on the service LAN. Result: DrainReadiness. */
  readonly 'can-drain': {readonly params: NoFields; readonly result: JsonObject};
  /** The giver's drain: graceful command, then wait for its connections. Result: DrainEnd. */
  readonly 'drain': {readonly params: DrainParams; readonly result: JsonObject};
  readonly 'apply': {readonly params: StepParams; readonly result: NoFields};
  readonly 'undo': {readonly params: UndoParams; readonly result: NoFields};
  /** Result: the requests counted in the access log. */
  readonly 'confirm': {readonly params: ConfirmParams; readonly result: {readonly count: number}};
  readonly 'finish': {readonly params: FinishParams; readonly result: NoFields};
  /** `baton resume --peer`. Result: the state the host is in now. */
  readonly 'resume': {readonly params: NoFields; readonly result: {readonly state: AgentStateName; readonly reason: string}};
  /** Rehearsal: the host holding the IP downs its service link for `seconds`. */
  readonly 'drop-link': {readonly params: DropLinkParams; readonly result: NoFields};
  /**
   * Rehearsal, before any step: whether the host's own configuration enables the rehearsal aids (rehearsal.enabled).
   * Its answer is that one boolean and nothing else of its configuration. An agent older than this op drops the
   * request unanswered (its codec refuses an op it does not know as malformed): see askRehearsalAids.
   */
  readonly 'rehearsal': {readonly params: NoFields; readonly result: {readonly enabled: boolean}};
  /**
   * The baton version the agent runs, for status (peer-version.ts). An agent of baton 0.1.0 does not know this
   * op: its codec refuses the request as malformed and counts it, and the asker gets no answer.
   */
  readonly 'version': {readonly params: NoFields; readonly result: {readonly version: string}};
}

export type PeerOp = keyof PeerOps;
export type PeerParams<Op extends PeerOp> = PeerOps[Op]['params'];
export type PeerResult<Op extends PeerOp> = PeerOps[Op]['result'];

// One decoder per op, typed by op so that a new op without a decoder does not compile. The messages are the
// ones the peer's error reply carries back to the coordinator (and the campaign's malformed-request cases).
const DECODERS: {readonly [Op in PeerOp]: (params: JsonObject) => PeerParams<Op>} = {
  'host-info': noFields,
  'check-log': noFields,
  'plan': (params) => {
    const giverAddress = decodeGiverAddress(params['giverAddress'], 'plan');
    return giverAddress === undefined ? {step: decodeStep(params)} : {step: decodeStep(params), giverAddress};
  },
  'begin': (params) => {
    const {side, epoch} = params;
    if (side !== 'giver' && side !== 'taker') throw new BatonError('BAD_REQUEST', 'begin: side must be giver or taker');
    if (!isEpoch(epoch)) throw new BatonError('BAD_REQUEST', `begin: epoch must be ${EPOCH_EXPECTED}`);
    const giverAddress = decodeGiverAddress(params['giverAddress'], 'begin');
    const addresses = decodeHostAddresses(params['addresses'], 'begin');
    return {side, epoch, ...giverAddress === undefined ? {} : {giverAddress}, ...addresses === undefined ? {} : {addresses}};
  },
  'can-drain': noFields,
  'drain': (params) => {
    const {timeoutMs} = params;
    if (typeof timeoutMs !== 'number' || !Number.isInteger(timeoutMs) || timeoutMs < 0 || timeoutMs > MAX_DRAIN_MS) {
      throw new BatonError('BAD_REQUEST', `drain: timeoutMs must be an integer 0..${MAX_DRAIN_MS}`);
    }
    return {timeoutMs};
  },
  'apply': (params) => ({step: decodeStep(params)}),
  // Anything but true is false, as it always was: an older coordinator that never sends it gets a plain undo.
  'undo': (params) => ({step: decodeStep(params), unlessHeld: params['unlessHeld'] === true}),
  'confirm': (params) => {
    const {needed, timeoutMs} = params;
    if (typeof needed !== 'number' || typeof timeoutMs !== 'number') throw new BatonError('BAD_REQUEST', 'confirm: needed and timeoutMs are numbers');
    return {needed, timeoutMs};
  },
  'finish': (params) => {
    const {outcome, reason} = params;
    if ((outcome !== 'done' && outcome !== 'rolled-back') || typeof reason !== 'string') throw new BatonError('BAD_REQUEST', 'finish: outcome and reason');
    // The reason becomes this host's state reason: logged, passed to the hook, shown in status.
    return {outcome, reason: sanitizePeerText(reason)};
  },
  'resume': noFields,
  'drop-link': (params) => {
    const {seconds} = params;
    if (typeof seconds !== 'number' || !Number.isInteger(seconds) || seconds < 1 || seconds > MAX_DROP_S) {
      throw new BatonError('BAD_REQUEST', `drop-link: seconds must be an integer 1..${MAX_DROP_S}`);
    }
    return {seconds};
  },
  'rehearsal': noFields,
  'version': noFields,
};

/** Every operation, in the order of PeerOps; the codec refuses a request whose op is not one of them. */
export const PEER_OPS: readonly PeerOp[] = Object.keys(DECODERS) as PeerOp[];

/** The params of a request of `op`, typed; throws BatonError BAD_REQUEST saying which field is wrong. */
export function decodePeerParams<Op extends PeerOp>(op: Op, params: JsonObject): PeerParams<Op> {
  const decode: (params: JsonObject) => PeerParams<Op> = DECODERS[op];
  return decode(params);
}

// drain.timeout_s is at most an hour.
const MAX_DRAIN_MS = 3_600_000;

/** An address the taker can send to without knowing the giver's interface names: no zone (fe80::1%eth0). */
function isUnzonedIpText(text: string): boolean {
  const address = parseIpAddress(text);
  return address !== undefined && !address.address.includes('%');
}

/** A GiverAddress as the peer sent it: one unzoned address, or a list of one per family (at most one IPv4, one IPv6). */
export function decodeGiverAddress(value: unknown, op: string): GiverAddress | undefined {
  if (value === undefined) return undefined;
  const refuse = (): never => {
    throw new BatonError('BAD_REQUEST', `${op}: giverAddress must be an IPv4 or IPv6 address without a zone, or a list of one of each`);
  };
  if (typeof value === 'string') return isUnzonedIpText(value) ? value : refuse();
  if (!Array.isArray(value) || value.length < 1 || value.length > 2) return refuse();
  const families = value.map((item: unknown) => (typeof item === 'string' && isUnzonedIpText(item) ? parseIpAddress(item)?.family : undefined));
  if (families.includes(undefined) || new Set(families).size !== families.length) return refuse();
  return value as string[];
}

/** A GiverAddress as a list. */
export function giverAddressList(value: GiverAddress | undefined): readonly string[] {
  return value === undefined ? [] : typeof value === 'string' ? [value] : value;
}

/** The list as it goes on the wire: a single address as a string, as agents before dual stack expect. */
export function giverAddressParam(addresses: readonly string[]): GiverAddress {
  return addresses.length === 1 ? addresses[0] as string : addresses;
}

function noFields(): NoFields {
  return {};
}

function decodeStep(params: JsonObject): SwitchStepName {
  const step = params['step'];
  if (typeof step !== 'string' || !(SWITCH_STEP_NAMES as readonly string[]).includes(step)) {
    throw new BatonError('BAD_REQUEST', `unknown step ${JSON.stringify(step)}`);
  }
  return step as SwitchStepName;
}
