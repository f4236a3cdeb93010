// One service of a host in etcd mode: its claim on the service's key (service-claim.ts), its planned switches
// (etcd-switch.ts), the state its hook last heard, and its part of `baton status`. The host's agent (etcd-agent.ts)
// runs one per service of its file and keeps what the services share: the health checks, the drained flag, the
// presence key and the control socket.

import type {EtcdConfig, EtcdService} from '../config/schema.js';
import type {ClaimPhase, EtcdServiceStatus, SwitchoverOptions, SwitchProgress, SwitchResult} from '../control-protocol.js';
import {describeError} from '../errors.js';
import type {HookRunner} from '../hooks.js';
import type {Logger} from '../log.js';
import {createStepRun} from '../plans/executor.js';
import type {AccessLogWatcher, Clock, CommandRunner, CoordinationStore, DrainDriver, NetworkDriver} from '../ports.js';
import type {AgentStateName, ServiceIp} from '../state-machine.js';
import {describeAddresses, findServing, isAnyInUse} from '../net/service-addresses.js';
import {serviceKey} from '../config/coordination.js';
import {EtcdSwitch} from './etcd-switch.js';
import type {LeaseTiming} from './lease-holder.js';
import {type ClaimActions, type ClaimLook, type ClaimPeers, type ClaimState, ServiceClaim, stepClaimActions} from './service-claim.js';

export interface HostedServiceDeps {
  readonly config: EtcdConfig;
  readonly service: EtcdService;
  readonly clock: Clock;
  readonly store: CoordinationStore;
  /** The driver of the service's interface. */
  readonly network: NetworkDriver;
  /** A planned switch's drain (not a failover's: a dead giver has nothing to drain). */
  readonly drain: DrainDriver;
  /** Runs drain.graceful_command. */
  readonly runner: CommandRunner;
  readonly hooks: Pick<HookRunner, 'notify'> | undefined;
  readonly log: Logger;
  readonly timing: LeaseTiming;
  /** Whether this host may take the service: healthy and not drained. */
  readonly mayServe: () => boolean;
  /** The key that drains this host, read by the claim at every look, and where to say what it found. */
  readonly drainedKey: string;
  readonly onDrained: (drained: boolean) => void;
  /** The service's confirm.access_log watcher, when set: a switch to this host confirms requests in it. */
  readonly accessLog: AccessLogWatcher | undefined;
  readonly newId: () => string;
  readonly signal: AbortSignal;
  /** keep-while-peers-agree only: what the hosts' beacons allow (host-beacons.ts). */
  readonly peers?: ClaimPeers;
  /** Told after each change of the claim's phase. Must not throw. */
  readonly onPhase?: () => void;
}

/** A claim's phase as the hook's states: a holder is active, every other phase stands by (or is stopping). */
const HOOK_STATE: Readonly<Record<ClaimPhase, AgentStateName>> = {
  'starting': 'starting',
  'standing-by': 'standby',
  'campaigning': 'standby',
  'holding': 'active',
  'stopped': 'stopping',
};

export class HostedService {
  readonly spec: EtcdService;
  readonly claim: ServiceClaim;
  readonly #switch: EtcdSwitch;
  readonly #deps: HostedServiceDeps;
  /** The state the hook last heard. */
  #hookState: AgentStateName = 'starting';
  #phaseSince: number;
  #run: Promise<void> | undefined;
  #serving: Promise<void> | undefined;
  readonly #ready: Promise<void>;
  #markReady: () => void = () => undefined;
  /** When this host, holding the service with failing checks, last tried to hand it over. */
  sickTriedAt = -Infinity;

  constructor(deps: HostedServiceDeps) {
    this.#deps = deps;
    const {config, service, clock, store, network, log, timing, signal} = deps;
    const {coordination} = config;
    this.spec = service;
    this.#phaseSince = clock.now();
    this.#ready = new Promise((resolve) => {
      this.#markReady = resolve;
    });
    const run = createStepRun({
      service: service.service, network, clock, log, signal,
      // The claim drops its own address before it campaigns, so an answer comes from another host.
      probe: () => isAnyInUse(network, service.service.ips),
      drain: deps.drain,
      giverAddresses: () => this.#switch.giverAddresses,
    });
    this.claim = new ServiceClaim({
      clock, store, log,
      timing,
      leaseTtlS: coordination.leaseTtlS,
      prefix: coordination.prefix,
      key: serviceKey(coordination.prefix, service.name),
      self: coordination.host,
      hosts: service.hosts,
      // A drained host neither campaigns nor takes a switch, as one whose checks fail.
      healthy: deps.mayServe,
      drainedKey: deps.drainedKey,
      onDrained: deps.onDrained,
      actions: sayWhatGoes(stepClaimActions(run), network, service.service.ips, log, () => this.#nowServing()),
      signal,
      onPhase: (state) => {
        this.#phaseChanged(state);
        deps.onPhase?.();
      },
      ...deps.peers === undefined ? {} : {peers: deps.peers},
    });
    this.#switch = new EtcdSwitch({
      config, service, clock, store, log, run, claim: this.claim, healthy: deps.mayServe, accessLog: deps.accessLog,
      newId: deps.newId, onServing: () => this.#nowServing(), runner: deps.runner,
    });
  }

  get name(): string {
    return this.spec.name;
  }

  /** Starts the claim and the switch's watch for requests naming this host; `first` runs before the claim's first look. */
  start(first: Promise<void>): void {
    const {log} = this.#deps;
    this.#run = first.then(() => this.claim.run()).catch((error: unknown) => {
      // The claim's loop does not throw; if it ever does, the address must not stay without a hold behind it.
      log.error(`(claim ${this.name}) stopped: ${describeError(error)}`);
    });
    this.#serving = this.#switch.serve(this.#deps.signal).catch((error: unknown) => log.error(`(switch ${this.name}) stopped: ${describeError(error)}`));
  }

  /** Resolves once the claim has looked at the key (standing by, campaigning or holding), or when it stops. */
  ready(): Promise<void> {
    return this.#ready;
  }

  /** Resolves when no switch of this service runs here (a stop waits for one to end by its own deadlines). */
  idle(): Promise<void> {
    return this.#switch.idle();
  }

  /** Resolves once the claim (which gives the address, then the lease up when the signal aborts) and the switch ended. */
  async stopped(): Promise<void> {
    await this.#run;
    await this.#serving;
  }

  /** `baton switchover --to HOST` of this service, on any host (etcd-switch.ts). */
  switchover(options: SwitchoverOptions, emit: (progress: SwitchProgress) => void): Promise<SwitchResult> {
    return this.#switch.switchover(options, emit);
  }

  /** The last look at the keys: the holder, and the hosts' presence. */
  get look(): ClaimLook | undefined {
    return this.claim.look;
  }

  /** This service's part of `baton status`. */
  async status(now: number): Promise<EtcdServiceStatus> {
    const {config, service, network} = this.#deps;
    const {host, prefix} = config.coordination;
    const state = this.claim.state;
    const served = await findServing(network, service.service.ips).catch(() => undefined);
    const deadline = this.claim.holdDeadlineMs();
    return {
      name: service.name,
      service: {address: service.service.ip.cidr, addresses: service.service.ips.map((ip) => ip.cidr), interface: service.service.interface,
        mode: service.service.mode},
      holdsIp: served === undefined ? undefined : served.absent.length === 0,
      held: served?.present.map((ip) => ip.cidr) ?? [],
      claim: {
        phase: state.phase,
        holder: state.phase === 'holding' ? host : state.phase === 'standing-by' ? state.holder : undefined,
        epoch: state.phase === 'holding' || state.phase === 'standing-by' ? state.epoch : undefined,
        error: state.phase === 'standing-by' ? state.error : undefined,
        deadlineInMs: deadline === undefined ? undefined : Math.max(0, Math.round(deadline - now)),
        switching: this.claim.switching,
        since: {phaseForMs: Math.round(now - this.#phaseSince)},
      },
      hosts: service.hosts,
      key: serviceKey(prefix, service.name),
    };
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
    const state = this.claim.state;
    this.#hook('active', `serves ${this.name} at epoch ${state.phase === 'holding' ? state.epoch : '?'}`);
  }

  #hook(newState: AgentStateName, reason: string): void {
    const oldState = this.#hookState;
    if (oldState === newState) return;
    this.#hookState = newState;
    this.#deps.hooks?.notify({oldState, newState, reason, service: this.name});
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
