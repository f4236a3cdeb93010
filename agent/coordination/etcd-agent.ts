// A host in etcd mode (issue 17): no peer and no beacons; the host holding the service's key under an etcd lease holds
// its address (service-claim.ts). This is what baton-agent runs with coordination.mode: etcd: the claim, the host's
// presence key (presence.ts: its health, for the other hosts and their `baton status`), the host's health checks (an
// unhealthy host never campaigns), the state-change hook, and the answers to the control socket.
//
// A planned switchover (`baton switchover --to HOST`, on any host; HOST runs it) is etcd-switch.ts. What a pair's agent does and
// this one does not yet: the drain, the rehearsal aids and metrics. Their requests are refused with a reason.

import type {EtcdConfig} from '../config/schema.js';
import type {
  ClaimPhase, DrainResult, EtcdPeer, EtcdStatusReport, FailResult, RehearsalAids, ResumeResult, SwitchoverOptions, SwitchProgress,
  SwitchResult,
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

// A host reads its drained flag this often: `baton drain` on another host takes effect within a second.
const DRAINED_READ_MS = 1000;
// A holder whose checks fail looks this often whether it should hand the service over, and tries again this long after
// a handover that no host took.
const SICK_LOOK_MS = 1000;
const SICK_RETRY_MS = 30_000;
const CALL_TIMEOUT_MS = 1000;

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
  /** The state the hook last heard. */
  #hookState: AgentStateName = 'starting';
  /** `baton drain` said this host must not take the service (a key in etcd, until `baton resume`). */
  #drained = false;
  #watchingDrained: Promise<void> | undefined;
  #watchingHealth: Promise<void> | undefined;
  /** When this host, holding the service with failing checks, last tried to hand it over. */
  #sickTriedAt = -Infinity;
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
      // A drained host neither campaigns nor takes a switch, as one whose checks fail.
      healthy: () => this.#mayServe(),
      actions: sayWhatGoes(stepClaimActions(run), network, config.service.ips, log, () => this.#nowServing()),
      signal: this.#stop.signal,
      onPhase: (state) => this.#phaseChanged(state),
    });
    this.#switch = new EtcdSwitch({
      config, clock, store, log, run, claim: this.#claim, healthy: () => this.#mayServe(), accessLog: deps.accessLog,
      newId: deps.newId, onServing: () => this.#nowServing(),
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
    // The drained flag is read before the claim's first look: a drained host must not campaign at start.
    this.#run = this.#readDrained().then(() => this.#claim.run()).catch((error: unknown) => {
      // The claim's loop does not throw; if it ever does, the address must not stay without a hold behind it.
      log.error(`(claim) stopped: ${describeError(error)}`);
    });
    this.#watchingDrained = this.#watchDrained(this.#stop.signal);
    this.#watchingHealth = this.#handOverWhileSick(this.#stop.signal);
    this.#serving = this.#switch.serve(this.#stop.signal).catch((error: unknown) => log.error(`(switch) stopped: ${describeError(error)}`));
  }

  /** Resolves once the claim has looked at the key (standing by, campaigning or holding), or when it stops. */
  ready(): Promise<void> {
    return this.#ready;
  }

  /** Gives the service up (the address, then the lease), then its presence, and stops. A switch this host runs is let
   *  finish first (its own deadlines end it): stopping in the middle would leave the address on neither host. */
  async shutdown(): Promise<void> {
    if (this.#claim.switching !== undefined) this.#deps.log.notice(`(agent) waiting for switch ${this.#claim.switching} to end before stopping`);
    await this.#switch.idle();
    this.#stop.abort(new Error('the agent stops'));
    await this.#run;
    await this.#serving;
    await this.#watchingDrained;
    await this.#watchingHealth;
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
        drained: this.#drained,
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

  /** `baton resume` on a drained host: it may take the service again. */
  async resume(peer: boolean): Promise<ResumeResult> {
    if (peer) throw notInEtcdMode('resume --peer', 'run `baton resume` on the drained host itself');
    const {store, config} = this.#deps;
    const key = drainedKey(config.coordination.prefix, config.coordination.host);
    const was = await store.read(key, {timeoutMs: CALL_TIMEOUT_MS});
    await store.transact([], [{type: 'delete', key}], {timeoutMs: CALL_TIMEOUT_MS});
    this.#drained = false;
    return {state: 'standing-by', reason: was === undefined ? `host ${config.coordination.host} was not drained: nothing to do`
      : `host ${config.coordination.host} is no longer drained: it may take ${config.pair} again`};
  }

  /**
   * `baton drain HOST`: HOST no longer takes the service (a key in etcd that its agent reads, until `baton resume` there),
   * and if it holds the service, it moves to the first other host in coordination.hosts that takes it, by a switch.
   */
  async drain(host: string, emit: (progress: SwitchProgress) => void): Promise<DrainResult> {
    const {store, config, log} = this.#deps;
    const {hosts, prefix} = config.coordination;
    if (!hosts.includes(host)) throw new BatonError('BAD_REQUEST', `drain ${host}: not one of coordination.hosts (${hosts.join(', ')})`);
    await store.transact([], [{type: 'put', key: drainedKey(prefix, host), value: JSON.stringify({by: config.coordination.host})}],
      {timeoutMs: CALL_TIMEOUT_MS});
    if (host === config.coordination.host) this.#drained = true;
    log.notice(`(drain) host ${host} is drained: it does not take ${config.pair} until \`baton resume\` there`);
    emit({kind: 'note', text: `host ${host} is drained: it does not take ${config.pair} until \`baton resume\` there`});
    const key = await store.read(serviceKey(prefix, config.pair), {timeoutMs: CALL_TIMEOUT_MS});
    if (key?.value !== host) {
      return {host, moved: undefined, text: `host ${host} is drained; ${key === undefined ? 'nobody' : `host ${key.value}`} holds ${config.pair}`};
    }
    let last: SwitchResult | undefined;
    for (const to of hosts.filter((candidate) => candidate !== host)) {
      emit({kind: 'note', text: `moving ${config.pair} from host ${host} to host ${to}`});
      try {
        last = await this.#switch.switchover({dryRun: false, strict: false, minRequests: undefined, confirmTimeoutS: undefined, pauseAfter: undefined, to}, emit);
      } catch (error) {
        emit({kind: 'note', text: `host ${to} cannot take it: ${describeError(error)}`});
        continue;
      }
      if (last.outcome === 'done') return {host, moved: last, text: `host ${host} is drained and free: host ${to} serves ${config.pair}`};
      emit({kind: 'note', text: `host ${to} did not take it: ${last.reason ?? 'rolled back'}`});
    }
    return {host, moved: last, text: `host ${host} is drained, but no other host took ${config.pair}: it still serves there`};
  }

  failActive(): Promise<FailResult> {
    return Promise.reject(notInEtcdMode('the rehearsal aids', 'rehearse a failover by stopping the holder\'s agent or cutting it from etcd'));
  }

  rehearsalAids(): Promise<RehearsalAids> {
    return Promise.reject(notInEtcdMode('the rehearsal aids', 'rehearse a failover by stopping the holder\'s agent or cutting it from etcd'));
  }

  /**
   * A holder whose health checks fail hands the service over, as a pair's does: to the first other host whose presence
   * says it is there and healthy, by a planned switch (which that host runs and confirms). With nobody healthy to take
   * it, it keeps the service, and tries again every SICK_RETRY_MS while its checks fail.
   */
  async #handOverWhileSick(signal: AbortSignal): Promise<void> {
    const {clock, log, config} = this.#deps;
    while (!signal.aborted) {
      await clock.sleep(SICK_LOOK_MS, signal).catch(() => undefined);
      if (signal.aborted || this.#health.health !== 'failing' || !this.#claim.holds() || this.#claim.switching !== undefined) continue;
      if (clock.now() - this.#sickTriedAt < SICK_RETRY_MS) continue;
      this.#sickTriedAt = clock.now();
      const healthy = this.#peers(clock.now()).peers.filter((peer) => peer.present === true && peer.health === 'ok').map((peer) => peer.host);
      if (healthy.length === 0) {
        log.warning(`(health) this host's checks fail and it holds ${config.pair}, but no other host is there and healthy to take it: keeping it`);
        continue;
      }
      for (const to of healthy) {
        log.notice(`(health) this host's checks fail: handing ${config.pair} over to ${to}`);
        const result = await this.#switch.switchover({dryRun: false, strict: false, minRequests: undefined, confirmTimeoutS: undefined,
          pauseAfter: undefined, to}, (progress) => log.info(`(health) ${JSON.stringify(progress)}`)).catch((error: unknown) => {
          log.warning(`(health) ${to} cannot take ${config.pair}: ${describeError(error)}`);
          return undefined;
        });
        if (result?.outcome === 'done') {
          log.notice(`(health) ${to} serves ${config.pair}: ${result.reason ?? ''}`);
          break;
        }
        if (result !== undefined) log.warning(`(health) the handover to ${to} rolled back: ${result.reason ?? ''}`);
      }
    }
  }

  #mayServe(): boolean {
    return this.#health.health === 'ok' && !this.#drained;
  }

  /** This host's drained flag as etcd has it; unchanged when etcd cannot be read (the claim then does nothing anyway). */
  async #readDrained(): Promise<void> {
    const {store, config, log} = this.#deps;
    const found = await store.read(drainedKey(config.coordination.prefix, config.coordination.host), {timeoutMs: CALL_TIMEOUT_MS}).then(
      (key) => key !== undefined, () => undefined);
    if (found === undefined || found === this.#drained) return;
    this.#drained = found;
    log.notice(found ? `(drain) this host is drained: it does not take ${config.pair} until \`baton resume\``
      : '(drain) this host is no longer drained');
  }

  async #watchDrained(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.#deps.clock.sleep(DRAINED_READ_MS, signal).catch(() => undefined);
      if (!signal.aborted) await this.#readDrained();
    }
  }

  #phaseChanged(state: ClaimState): void {
    this.#phaseSince = this.#deps.clock.now();
    if (state.phase !== 'starting') this.#markReady();
    // Holding the key is not serving yet: the hook hears active once the address is taken (#nowServing), so that a take
    // refused by the duplicate-address probe is no active-then-standby pair.
    if (state.phase === 'holding') return;
    const reason = state.phase === 'standing-by' ? (state.error === undefined ? 'stands by' : `cannot read the key: ${state.error}`) : state.phase;
    this.#hook(HOOK_STATE[state.phase], reason);
  }

  /** The address was taken (a campaign's take, or a switch's backup-net-up): the hook hears active. */
  #nowServing(): void {
    const state = this.#claim.state;
    this.#hook('active', `serves ${this.#deps.config.pair} at epoch ${state.phase === 'holding' ? state.epoch : '?'}`);
  }

  #hook(newState: AgentStateName, reason: string): void {
    const oldState = this.#hookState;
    if (oldState === newState) return;
    this.#hookState = newState;
    this.#deps.hooks?.notify({oldState, newState, reason});
  }
}

/** The claim's actions, with a drop that says which addresses it found and removed (at start: left by an agent
 *  before this one), so that a removal is never silent. */
function sayWhatGoes(actions: ClaimActions, network: NetworkDriver, ips: readonly ServiceIp[], log: Logger, taken: () => void): ClaimActions {
  return {
    async take() {
      await actions.take();
      taken();
    },
    async drop() {
      // isServing spawns nothing: the drop is not delayed by more than a netlink read.
      const found = await findServing(network, ips).catch(() => undefined);
      await actions.drop();
      if (found !== undefined && found.present.length > 0) log.notice(`(claim) removed ${describeAddresses(found.present)} from the service interface`);
    },
  };
}

/** The key that drains a host: present, the host takes no service. */
export function drainedKey(prefix: string, host: string): string {
  return `${prefix}drained/${host}`;
}

function notInEtcdMode(what: string, instead: string): BatonError {
  return new BatonError('BAD_REQUEST', `this agent runs etcd mode, which has no ${what} yet: ${instead}`);
}
