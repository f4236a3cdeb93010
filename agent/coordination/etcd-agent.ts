// A host in etcd mode (issue 17): no peer and no beacons; the host holding the service's key under an etcd lease holds
// its address (service-claim.ts). This is what baton-agent runs with coordination.mode: etcd: the claim, the host's
// presence key (presence.ts: its health, for the other hosts and their `baton status`), the host's health checks (an
// unhealthy host never campaigns), the state-change hook, and the answers to the control socket.
//
// A planned switchover (`baton switchover --to HOST`, on any host; HOST runs it) is etcd-switch.ts. What a pair's agent does and
// this one does not yet: the drain, the rehearsal aids and metrics. Their requests are refused with a reason.

import type {EtcdConfig} from '../config/schema.js';
import type {
  ClaimPhase, EtcdPeer, EtcdStatusReport, FailResult, RehearsalAids, ResumeResult, SwitchoverOptions, SwitchProgress, SwitchResult,
} from '../control-protocol.js';
import type {ControlHandler} from '../control-server.js';
import {BatonError, describeError} from '../errors.js';
import {HealthMonitor, type HealthProbe} from '../health.js';
import type {HookRunner} from '../hooks.js';
import type {Logger} from '../log.js';
import {createStepRun} from '../plans/executor.js';
import type {AccessLogWatcher, Clock, CoordinationStore, DrainDriver, NetworkDriver} from '../ports.js';
import {EtcdSwitch} from './etcd-switch.js';
import type {AgentStateName, ServiceIp} from '../state-machine.js';
import {describeAddresses, findServing, isAnyInUse} from '../net/service-addresses.js';
import {VERSION} from '../version.js';
import {presenceKey, serviceKey} from '../config/coordination.js';
import {leaseTiming} from './lease-holder.js';
import {PresenceKeeper} from './presence.js';
import {type ClaimActions, type ClaimState, ServiceClaim, stepClaimActions} from './service-claim.js';

export interface EtcdAgentDeps {
  readonly config: EtcdConfig;
  readonly clock: Clock;
  readonly store: CoordinationStore;
  readonly network: NetworkDriver;
  /** Not used by a claim's steps (no drain in a failover); the step catalogue's context needs one. */
  readonly drain: DrainDriver;
  readonly healthProbe: HealthProbe;
  readonly hooks: Pick<HookRunner, 'notify' | 'drain'> | undefined;
  readonly log: Logger;
  readonly hostname: string;
  readonly pid: number;
  /** confirm.access_log's watcher, when set: a switch to this host confirms requests in it. */
  readonly accessLog: AccessLogWatcher | undefined;
  readonly newId: () => string;
}

/** A claim's phase as the hook's states: a holder is active, every other phase stands by (or is stopping). */
const HOOK_STATE: Readonly<Record<ClaimPhase, AgentStateName>> = {
  'starting': 'starting',
  'standing-by': 'standby',
  'campaigning': 'standby',
  'holding': 'active',
  'stopped': 'stopping',
};

export class EtcdAgent implements ControlHandler {
  readonly #deps: EtcdAgentDeps;
  readonly #claim: ServiceClaim;
  readonly #switch: EtcdSwitch;
  #serving: Promise<void> | undefined;
  readonly #presence: PresenceKeeper;
  readonly #health: HealthMonitor;
  readonly #stop = new AbortController();
  /** Stopped after the claim: the presence key goes once the service was given up. */
  readonly #stopPresence = new AbortController();
  #presenceRun: Promise<void> | undefined;
  readonly #startedAt: number;
  #phaseSince: number;
  #run: Promise<void> | undefined;
  readonly #ready: Promise<void>;
  #markReady: () => void = () => undefined;

  constructor(deps: EtcdAgentDeps) {
    this.#deps = deps;
    const {config, clock, store, network, log} = deps;
    const {coordination} = config;
    this.#startedAt = clock.now();
    this.#phaseSince = this.#startedAt;
    this.#ready = new Promise((resolve) => {
      this.#markReady = resolve;
    });
    this.#health = new HealthMonitor({
      probe: deps.healthProbe, settings: config.health, clock,
      onChange: (health, reason) => {
        log.notice(`(health) ${health}: ${reason}`);
        this.#presence.setHealth(health);
        this.#claim.nudge();
      },
    });
    const timing = leaseTiming(coordination.leaseTtlS, coordination.renewMarginMs);
    this.#presence = new PresenceKeeper({
      clock, store, log, timing, leaseTtlS: coordination.leaseTtlS, version: VERSION,
      key: presenceKey(coordination.prefix, coordination.host), signal: this.#stopPresence.signal,
    }, this.#health.health);
    const run = createStepRun({
      service: config.service, network, clock, log, signal: this.#stop.signal,
      // The claim drops its own address before it campaigns, so an answer comes from another host.
      probe: () => isAnyInUse(network, config.service.ips),
      drain: deps.drain,
      giverAddresses: () => [],
    });
    this.#claim = new ServiceClaim({
      clock, store, log,
      timing,
      leaseTtlS: coordination.leaseTtlS,
      prefix: coordination.prefix,
      key: serviceKey(coordination.prefix, config.pair),
      self: coordination.host,
      hosts: coordination.hosts,
      healthy: () => this.#health.health === 'ok',
      actions: sayWhatGoes(stepClaimActions(run), network, config.service.ips, log),
      signal: this.#stop.signal,
      onPhase: (state, previous) => this.#phaseChanged(state, previous),
    });
    this.#switch = new EtcdSwitch({
      config, clock, store, log, run, claim: this.#claim, healthy: () => this.#health.health === 'ok', accessLog: deps.accessLog,
      newId: deps.newId,
    });
  }

  /** Starts the health checks and the claim; returns at once (ready() says when the key was first looked at). */
  start(): void {
    const {config, log} = this.#deps;
    const {host, hosts, endpoints} = config.coordination;
    log.notice(`(agent) baton ${VERSION}, host ${host} of ${hosts.join(', ')} in etcd mode (${endpoints.join(', ')}), ` +
      `service ${config.pair}: ${describeAddresses(config.service.ips)} on ${config.service.interface}`);
    this.#health.start();
    this.#presenceRun = this.#presence.run().catch((error: unknown) => log.error(`(presence) stopped: ${describeError(error)}`));
    this.#run = this.#claim.run().catch((error: unknown) => {
      // The claim's loop does not throw; if it ever does, the address must not stay without a hold behind it.
      log.error(`(claim) stopped: ${describeError(error)}`);
    });
    this.#serving = this.#switch.serve(this.#stop.signal).catch((error: unknown) => log.error(`(switch) stopped: ${describeError(error)}`));
  }

  /** Resolves once the claim has looked at the key (standing by, campaigning or holding), or when it stops. */
  ready(): Promise<void> {
    return this.#ready;
  }

  /** Gives the service up (the address, then the lease), then its presence, and stops. */
  async shutdown(): Promise<void> {
    this.#stop.abort(new Error('the agent stops'));
    await this.#run;
    await this.#serving;
    this.#stopPresence.abort(new Error('the agent stops'));
    await this.#presenceRun;
    await this.#health.stop();
    await this.#deps.hooks?.drain();
  }

  async status(): Promise<Omit<EtcdStatusReport, 'control'>> {
    const {config, clock, network, hostname, pid} = this.#deps;
    const {coordination} = config;
    const now = clock.now();
    const state = this.#claim.state;
    const served = await findServing(network, config.service.ips).catch(() => undefined);
    const deadline = this.#claim.holdDeadlineMs();
    const snapshot = this.#health.snapshot();
    const phase: ClaimPhase = state.phase;
    return {
      coordination: 'etcd',
      pair: config.pair,
      self: {
        host: coordination.host, hostname, pid, version: VERSION, uptimeMs: Math.round(now - this.#startedAt),
        health: snapshot.health, healthChecks: snapshot.checks.map((c) => ({name: c.name, ok: c.ok, detail: c.detail})),
        holdsIp: served === undefined ? undefined : served.absent.length === 0,
        held: served?.present.map((ip) => ip.cidr) ?? [],
      },
      service: {address: config.service.ip.cidr, addresses: config.service.ips.map((ip) => ip.cidr), interface: config.service.interface,
        mode: config.service.mode},
      claim: {
        phase,
        holder: state.phase === 'holding' ? coordination.host : state.phase === 'standing-by' ? state.holder : undefined,
        epoch: state.phase === 'holding' || state.phase === 'standing-by' ? state.epoch : undefined,
        error: state.phase === 'standing-by' ? state.error : undefined,
        deadlineInMs: deadline === undefined ? undefined : Math.max(0, Math.round(deadline - now)),
        switching: this.#claim.switching,
        since: {phaseForMs: Math.round(now - this.#phaseSince)},
      },
      hosts: coordination.hosts,
      ...this.#peers(now),
      key: serviceKey(coordination.prefix, config.pair),
      etcd: {endpoints: coordination.endpoints, leaseTtlS: coordination.leaseTtlS, renewMarginMs: coordination.renewMarginMs,
        onEtcdLoss: coordination.onEtcdLoss},
    };
  }

  /** The other hosts as the last look at the keys saw them: their presence and whether the service's key names them. */
  #peers(now: number): {peers: EtcdPeer[]; peersReadMsAgo: number | undefined; watching: boolean} {
    const {host, hosts} = this.#deps.config.coordination;
    const look = this.#claim.look;
    const watching = this.#claim.watching;
    if (look === undefined) return {peers: [], peersReadMsAgo: undefined, watching};
    const peers = hosts.filter((name) => name !== host).map((name): EtcdPeer => {
      const presence = look.presence?.get(name);
      return {host: name, present: look.presence === undefined ? undefined : presence !== undefined, health: presence?.health,
        version: presence?.version, since: presence?.since, holds: look.holder === name};
    });
    return {peers, peersReadMsAgo: Math.round(now - look.atMs), watching};
  }

  /** `baton switchover --to HOST`, on any host: the service moves to HOST (etcd-switch.ts). */
  switchover(options: SwitchoverOptions, emit: (progress: SwitchProgress) => void): Promise<SwitchResult> {
    return this.#switch.switchover(options, emit);
  }

  resume(): Promise<ResumeResult> {
    return Promise.reject(notInEtcdMode('resume', 'a host in etcd mode never stays released: it stands by as soon as it can'));
  }

  failActive(): Promise<FailResult> {
    return Promise.reject(notInEtcdMode('the rehearsal aids', 'rehearse a failover by stopping the holder\'s agent or cutting it from etcd'));
  }

  rehearsalAids(): Promise<RehearsalAids> {
    return Promise.reject(notInEtcdMode('the rehearsal aids', 'rehearse a failover by stopping the holder\'s agent or cutting it from etcd'));
  }

  #phaseChanged(state: ClaimState, previous: ClaimState): void {
    this.#phaseSince = this.#deps.clock.now();
    if (state.phase !== 'starting') this.#markReady();
    const oldState = HOOK_STATE[previous.phase];
    const newState = HOOK_STATE[state.phase];
    if (oldState === newState) return;
    const reason = state.phase === 'holding' ? `holds ${this.#deps.config.pair}'s key at epoch ${state.epoch}`
      : state.phase === 'standing-by' ? (state.error === undefined ? 'stands by' : `cannot read the key: ${state.error}`)
        : state.phase;
    this.#deps.hooks?.notify({oldState, newState, reason});
  }
}

/** The claim's actions, with a drop that says which addresses it found and removed (at start: left by an agent
 *  before this one), so that a removal is never silent. */
function sayWhatGoes(actions: ClaimActions, network: NetworkDriver, ips: readonly ServiceIp[], log: Logger): ClaimActions {
  return {
    take: () => actions.take(),
    async drop() {
      // isServing spawns nothing: the drop is not delayed by more than a netlink read.
      const found = await findServing(network, ips).catch(() => undefined);
      await actions.drop();
      if (found !== undefined && found.present.length > 0) log.notice(`(claim) removed ${describeAddresses(found.present)} from the service interface`);
    },
  };
}

function notInEtcdMode(what: string, instead: string): BatonError {
  return new BatonError('BAD_REQUEST', `this agent runs etcd mode, which has no ${what} yet: ${instead}`);
}
