// A host in etcd mode (issue 17): no peer (beacons only with keep-while-peers-agree, host-beacons.ts); the host holding a service's key under an etcd lease holds
// its address (service-claim.ts). This is what baton-agent runs with coordination.mode: etcd: one HostedService per
// service of the file (its claim, its planned switches, its hook), and what the services share: the host's presence
// key (presence.ts: its health, for the other hosts and their `baton status`), its health checks (an unhealthy host
// never campaigns), its drained flag, and the answers to the control socket.
//
// A planned switchover (`baton switchover --to HOST [--service NAME]`, on any host; HOST runs it) is etcd-switch.ts. What a
// pair's agent does and this one does not yet: the rehearsal aids and metrics. Their requests are refused
// with a reason.

import type {EtcdConfig, EtcdService} from '../config/schema.js';
import type {
  DrainResult, EtcdPeer, EtcdStatusReport, FailResult, RehearsalAids, ResumeResult, SwitchoverOptions, SwitchProgress,
  SwitchResult,
} from '../control-protocol.js';
import type {ControlHandler} from '../control-server.js';
import {BatonError, describeError} from '../errors.js';
import {HealthMonitor, type HealthProbe} from '../health.js';
import type {HookRunner} from '../hooks.js';
import type {Logger} from '../log.js';
import type {AccessLogWatcher, BeaconSocket, Clock, CommandRunner, CoordinationStore, DrainDriver, NetworkDriver} from '../ports.js';
import {describeAddresses, ownDrainAddresses} from '../net/service-addresses.js';
import {drainReadiness} from '../plans/drain.js';
import {HostBeacons} from './host-beacons.js';
import {VERSION} from '../version.js';
import {presenceKey, serviceKey} from '../config/coordination.js';
import {CALL_TIMEOUT_MS, leaseTiming} from './lease-holder.js';
import {PresenceKeeper} from './presence.js';
import {HostedService} from './hosted-service.js';

export interface EtcdAgentDeps {
  readonly config: EtcdConfig;
  readonly clock: Clock;
  readonly store: CoordinationStore;
  /** The driver of a service interface. */
  readonly network: (iface: string) => NetworkDriver;
  /** A planned switch's drain on a service interface (not a failover's: a dead giver has nothing to drain). */
  readonly drain: (iface: string) => DrainDriver;
  /** Runs drain.graceful_command. */
  readonly runner: CommandRunner;
  readonly healthProbe: HealthProbe;
  readonly hooks: Pick<HookRunner, 'notify' | 'drain'> | undefined;
  readonly log: Logger;
  readonly hostname: string;
  readonly pid: number;
  /** A service's confirm.access_log watcher, when set: a switch of it to this host confirms requests in it. */
  readonly accessLog: (service: EtcdService) => AccessLogWatcher | undefined;
  readonly newId: () => string;
  /** With coordination.beacons (keep-while-peers-agree): the socket of the hosts' beacons. */
  readonly beaconSocket?: BeaconSocket;
}

// A host reads its drained flag this often: `baton drain` on another host takes effect within a second.
const DRAINED_READ_MS = 1000;
// A holder whose checks fail looks this often whether it should hand a service over, and tries again this long after
// a handover that no host took.
const SICK_LOOK_MS = 1000;
const SICK_RETRY_MS = 30_000;

export class EtcdAgent implements ControlHandler {
  readonly #deps: EtcdAgentDeps;
  readonly #services: readonly HostedService[];
  /** The services this host can drain (drain.enabled, address mode, nftables): their own addresses are kept in its presence. */
  readonly #drainReady = new Set<string>();
  /** `baton drain` said this host must not take any service (a key in etcd, until `baton resume`). */
  #drained = false;
  #watchingDrained: Promise<void> | undefined;
  #watchingHealth: Promise<void> | undefined;
  readonly #presence: PresenceKeeper;
  readonly #health: HealthMonitor;
  readonly #stop = new AbortController();
  /** Stopped after the claims: the presence key goes once every service was given up. */
  readonly #stopPresence = new AbortController();
  #presenceRun: Promise<void> | undefined;
  readonly #startedAt: number;
  /** keep-while-peers-agree: the hosts' beacons, stopped after the claims (the last ones say no service is held). */
  readonly #beacons: HostBeacons | undefined;
  readonly #stopBeacons = new AbortController();
  #beaconsRun: Promise<void> | undefined;

  constructor(deps: EtcdAgentDeps) {
    this.#deps = deps;
    const {config, clock, store, log} = deps;
    const {coordination} = config;
    this.#startedAt = clock.now();
    this.#health = new HealthMonitor({
      probe: deps.healthProbe, settings: config.health, clock,
      onChange: (health, reason) => {
        log.notice(`(health) ${health}: ${reason}`);
        this.#presence.setHealth(health);
        for (const service of this.#services) service.claim.nudge();
      },
    });
    const timing = leaseTiming(coordination.leaseTtlS, coordination.renewMarginMs);
    this.#presence = new PresenceKeeper({
      clock, store, log, timing, leaseTtlS: coordination.leaseTtlS, version: VERSION,
      key: presenceKey(coordination.prefix, coordination.host), signal: this.#stopPresence.signal,
    }, this.#health.health);
    const {beacons: beaconConfig} = coordination;
    const beacons = beaconConfig === undefined || deps.beaconSocket === undefined ? undefined : new HostBeacons({
      clock, socket: deps.beaconSocket, log, boot: deps.newId(), signal: this.#stopBeacons.signal,
      settings: {cluster: clusterName(coordination.prefix), self: coordination.host, hosts: coordination.hosts,
        addresses: new Map(Object.entries(beaconConfig.addresses)), keyring: beaconConfig.keyring,
        intervalMs: beaconConfig.intervalMs, heardWithinMs: beaconConfig.heardWithinMs, marginMs: coordination.renewMarginMs},
      services: () => this.#services.map((s) => ({name: s.name, ...s.claim.beaconWord()})),
      onBeacon: () => {
        for (const s of this.#services) s.claim.peersChanged();
      },
    });
    this.#beacons = beacons;
    this.#services = config.services.map((service) => new HostedService({
      config, service, clock, store, log, timing,
      network: deps.network(service.service.interface),
      drain: deps.drain(service.service.interface),
      runner: deps.runner,
      hooks: deps.hooks,
      mayServe: () => this.#mayServe(),
      drainedKey: drainedKey(coordination.prefix, coordination.host),
      onDrained: (drained) => this.#setDrained(drained),
      accessLog: deps.accessLog(service),
      newId: deps.newId,
      signal: this.#stop.signal,
      // keep-while-peers-agree: what the hosts' beacons allow this service, among the hosts that may hold it.
      ...beacons === undefined ? {} : {peers: {
        keepUntilMs: (nowMs: number) => {
          const verdict = beacons.board.keepUntil(service.name, nowMs, service.hosts);
          return verdict.ok ? verdict.untilMs : undefined;
        },
        campaignNotBeforeMs: () => beacons.board.campaignNotBefore(service.name, service.hosts),
      }},
      // What this host says of the service changed: the other hosts hear it now, not an interval later.
      onPhase: () => void this.#beacons?.sendNow(),
    }));
  }

  /** Starts the health checks and the claims; returns at once (ready() says when every key was first looked at). */
  start(): void {
    const {config, log} = this.#deps;
    const {host, hosts, endpoints} = config.coordination;
    log.notice(`(agent) baton ${VERSION}, host ${host} of ${hosts.join(', ')} in etcd mode (${endpoints.join(', ')}), ` +
      `${config.services.map((s) => `service ${s.name}: ${describeAddresses(s.service.ips)} on ${s.service.interface}` +
        (s.hosts === hosts ? '' : ` (hosts ${s.hosts.join(', ')})`)).join('; ')}`);
    this.#health.start();
    this.#beaconsRun = this.#beacons?.run().catch((error: unknown) => log.error(`(beacons) stopped: ${describeError(error)}`));
    this.#presenceRun = this.#presence.run().catch((error: unknown) => log.error(`(presence) stopped: ${describeError(error)}`));
    // The drained flag is read before the claims' first look: a drained host must not campaign at start.
    // Whatever a drain left (this agent was killed during one) is taken back first.
    const drainedRead = this.#drainStart().then(() => this.#readDrained());
    for (const service of this.#services) service.start(drainedRead);
    this.#watchingDrained = this.#watchDrained(this.#stop.signal);
    this.#watchingHealth = this.#handOverWhileSick(this.#stop.signal);
  }

  /** Resolves once every claim has looked at its key (standing by, campaigning or holding), or stopped. */
  async ready(): Promise<void> {
    await Promise.all(this.#services.map((service) => service.ready()));
  }

  /** Gives every service up (the address, then the lease), then its presence, and stops. A switch this host runs is let
   *  finish first (its own deadlines end it): stopping in the middle would leave the address on neither host. */
  async shutdown(): Promise<void> {
    for (const service of this.#services) {
      if (service.claim.switching !== undefined) {
        this.#deps.log.notice(`(agent) waiting for switch ${service.claim.switching} of ${service.name} to end before stopping`);
      }
    }
    await Promise.all(this.#services.map((service) => service.idle()));
    this.#stop.abort(new Error('the agent stops'));
    await Promise.all(this.#services.map((service) => service.stopped()));
    await this.#watchingDrained;
    await this.#watchingHealth;
    this.#stopPresence.abort(new Error('the agent stops'));
    await this.#presenceRun;
    // The service is given up: one last beacon says so, and the other hosts need not wait for this one's silence.
    await this.#beacons?.sendNow();
    this.#stopBeacons.abort(new Error('the agent stops'));
    await this.#beaconsRun;
    await this.#health.stop();
    await this.#deps.hooks?.drain();
  }

  async status(): Promise<Omit<EtcdStatusReport, 'control'>> {
    const {config, clock, hostname, pid} = this.#deps;
    const {coordination} = config;
    const now = clock.now();
    const snapshot = this.#health.snapshot();
    return {
      coordination: 'etcd',
      self: {
        host: coordination.host, hostname, pid, version: VERSION, uptimeMs: Math.round(now - this.#startedAt),
        health: snapshot.health, healthChecks: snapshot.checks.map((c) => ({name: c.name, ok: c.ok, detail: c.detail})),
        drained: this.#drained,
      },
      services: await Promise.all(this.#services.map((service) => service.status(now))),
      hosts: coordination.hosts,
      ...this.#peers(now),
      etcd: {endpoints: coordination.endpoints, prefix: coordination.prefix, leaseTtlS: coordination.leaseTtlS,
        renewMarginMs: coordination.renewMarginMs, onEtcdLoss: coordination.onEtcdLoss},
    };
  }

  /**
   * The other hosts as the latest look at the keys saw them: their presence (the freshest look of any service) and the
   * services whose keys name them (each service's last look).
   */
  #peers(now: number): {peers: EtcdPeer[]; peersReadMsAgo: number | undefined; watching: boolean} {
    const {host, hosts} = this.#deps.config.coordination;
    const looks = this.#services.map((service) => service.look);
    const watching = this.#services.every((service) => service.claim.watching);
    const latest = looks.reduce((best, look) => look !== undefined && (best === undefined || look.atMs > best.atMs) ? look : best, undefined);
    if (latest === undefined) return {peers: [], peersReadMsAgo: undefined, watching};
    const peers = hosts.filter((name) => name !== host).map((name): EtcdPeer => {
      const presence = latest.presence?.get(name);
      return {host: name, present: latest.presence === undefined ? undefined : presence !== undefined, health: presence?.health,
        version: presence?.version, since: presence?.since,
        holds: this.#services.filter((service) => service.look?.holder === name).map((service) => service.name)};
    });
    return {peers, peersReadMsAgo: Math.round(now - latest.atMs), watching};
  }

  /** `baton switchover --to HOST [--service NAME]`, on any host: the service moves to HOST (etcd-switch.ts). */
  async switchover(options: SwitchoverOptions, emit: (progress: SwitchProgress) => void): Promise<SwitchResult> {
    return this.#service(options.service).switchover(options, emit);
  }

  /** The service a request names; with none named, the only one (several: the request must name one). */
  #service(name: string | undefined): HostedService {
    const names = this.#services.map((service) => service.name);
    if (name === undefined) {
      const [only, ...more] = this.#services;
      if (only === undefined || more.length > 0) {
        throw new BatonError('BAD_REQUEST', `this host serves ${names.join(', ')}: say which to move with --service NAME`);
      }
      return only;
    }
    const found = this.#services.find((service) => service.name === name);
    if (found === undefined) throw new BatonError('BAD_REQUEST', `no service ${name} on this host: it serves ${names.join(', ')}`);
    return found;
  }

  /** `baton resume` on a drained host: it may take its services again. */
  async resume(peer: boolean): Promise<ResumeResult> {
    if (peer) throw notInEtcdMode('resume --peer', 'run `baton resume` on the drained host itself');
    const {store, config} = this.#deps;
    const key = drainedKey(config.coordination.prefix, config.coordination.host);
    const was = await store.read(key, {timeoutMs: CALL_TIMEOUT_MS});
    await store.transact([], [{type: 'delete', key}], {timeoutMs: CALL_TIMEOUT_MS});
    this.#drained = false;
    for (const service of this.#services) service.claim.nudge();
    return {state: 'standing-by', reason: was === undefined ? `host ${config.coordination.host} was not drained: nothing to do`
      : `host ${config.coordination.host} is no longer drained: it may take ${this.#names()} again`};
  }

  /**
   * `baton drain HOST`: HOST no longer takes any service (a key in etcd that its agent reads, until `baton resume`
   * there), and each service of this host's file that HOST holds moves to the first other host of the service's hosts
   * that takes it, by a switch, one service after the other.
   */
  async drain(host: string, emit: (progress: SwitchProgress) => void): Promise<DrainResult> {
    const {store, config, log} = this.#deps;
    const {hosts, prefix} = config.coordination;
    if (!hosts.includes(host)) throw new BatonError('BAD_REQUEST', `drain ${host}: not one of coordination.hosts (${hosts.join(', ')})`);
    await store.transact([], [{type: 'put', key: drainedKey(prefix, host), value: JSON.stringify({by: config.coordination.host})}],
      {timeoutMs: CALL_TIMEOUT_MS});
    if (host === config.coordination.host) this.#drained = true;
    const names = this.#names();
    log.notice(`(drain) host ${host} is drained: it does not take ${names} until \`baton resume\` there`);
    emit({kind: 'note', text: `host ${host} is drained: it does not take ${names} until \`baton resume\` there`});
    const moves: ServiceMove[] = [];
    for (const service of this.#services) moves.push(await this.#moveAway(service, host, emit));
    const stuck = moves.filter((move) => move.kind === 'stuck').map((move) => move.service);
    const said = moves.map((move) => move.text).join('; ');
    const moved = moves.findLast((move) => move.result !== undefined)?.result;
    if (stuck.length > 0) return {host, moved, stuck, text: `host ${host} is drained, but no other host took ${stuck.join(', ')}: ${said}`};
    return {host, moved, stuck, text: moves.some((move) => move.kind === 'moved') ? `host ${host} is drained and free: ${said}`
      : `host ${host} is drained; ${said}`};
  }

  /** Moves one service away from a drained host, if it holds it: to the service's other hosts in turn. */
  async #moveAway(service: HostedService, host: string, emit: (progress: SwitchProgress) => void): Promise<ServiceMove> {
    const {store, config} = this.#deps;
    const name = service.name;
    let holder: string | undefined;
    try {
      holder = (await store.read(serviceKey(config.coordination.prefix, name), {timeoutMs: CALL_TIMEOUT_MS}))?.value;
    } catch (error) {
      return {kind: 'stuck', service: name, result: undefined, text: `${name}'s key cannot be read: ${describeError(error)}`};
    }
    if (holder !== host) {
      return {kind: 'elsewhere', service: name, result: undefined, text: `${holder === undefined ? 'nobody' : `host ${holder}`} holds ${name}`};
    }
    let last: SwitchResult | undefined;
    for (const to of service.spec.hosts.filter((candidate) => candidate !== host)) {
      emit({kind: 'note', text: `moving ${name} from host ${host} to host ${to}`});
      try {
        last = await service.switchover({...NO_OPTIONS, to, service: name}, emit);
      } catch (error) {
        emit({kind: 'note', text: `host ${to} cannot take ${name}: ${describeError(error)}`});
        continue;
      }
      if (last.outcome === 'done') return {kind: 'moved', service: name, result: last, text: `host ${to} serves ${name}`};
      emit({kind: 'note', text: `host ${to} did not take ${name}: ${last.reason ?? 'rolled back'}`});
    }
    return {kind: 'stuck', service: name, result: last, text: `${name} still serves on host ${host}`};
  }

  failActive(): Promise<FailResult> {
    return Promise.reject(notInEtcdMode('the rehearsal aids', 'rehearse a failover by stopping the holder\'s agent or cutting it from etcd'));
  }

  rehearsalAids(): Promise<RehearsalAids> {
    return Promise.reject(notInEtcdMode('the rehearsal aids', 'rehearse a failover by stopping the holder\'s agent or cutting it from etcd'));
  }

  /**
   * A holder whose health checks fail hands its services over, as a pair's does: each to the first other host of the
   * service whose presence says it is there and healthy, by a planned switch (which that host runs and confirms). With
   * nobody healthy to take one, it keeps it, and tries again every SICK_RETRY_MS while its checks fail.
   */
  async #handOverWhileSick(signal: AbortSignal): Promise<void> {
    const {clock} = this.#deps;
    while (!signal.aborted) {
      await clock.sleep(SICK_LOOK_MS, signal).catch(() => undefined);
      if (signal.aborted || this.#health.health !== 'failing') continue;
      for (const service of this.#services) {
        if (signal.aborted || this.#health.health !== 'failing') break;
        await this.#handOver(service);
      }
    }
  }

  async #handOver(service: HostedService): Promise<void> {
    const {clock, log} = this.#deps;
    const name = service.name;
    if (!service.claim.holds() || service.claim.switching !== undefined || clock.now() - service.sickTriedAt < SICK_RETRY_MS) return;
    service.sickTriedAt = clock.now();
    const peers = this.#peers(clock.now()).peers;
    const healthy = service.spec.hosts.filter((host) => peers.some((peer) => peer.host === host && peer.present === true && peer.health === 'ok'));
    if (healthy.length === 0) {
      log.warning(`(health) this host's checks fail and it holds ${name}, but no other host of it is there and healthy to take it: keeping it`);
      return;
    }
    for (const to of healthy) {
      log.notice(`(health) this host's checks fail: handing ${name} over to ${to}`);
      const result = await service.switchover({...NO_OPTIONS, to, service: name},
        (progress) => log.info(`(health) ${JSON.stringify(progress)}`)).catch((error: unknown) => {
        log.warning(`(health) ${to} cannot take ${name}: ${describeError(error)}`);
        return undefined;
      });
      if (result?.outcome === 'done') {
        log.notice(`(health) ${to} serves ${name}: ${result.reason ?? ''}`);
        return;
      }
      if (result !== undefined) log.warning(`(health) the handover of ${name} to ${to} rolled back: ${result.reason ?? ''}`);
    }
  }

  #mayServe(): boolean {
    return this.#health.health === 'ok' && !this.#drained;
  }

  #names(): string {
    return this.#services.map((service) => service.name).join(', ');
  }

  /** This host's drained flag as etcd has it; unchanged when etcd cannot be read (the claims then do nothing anyway). */
  async #readDrained(): Promise<void> {
    const {store, config} = this.#deps;
    const found = await store.read(drainedKey(config.coordination.prefix, config.coordination.host), {timeoutMs: CALL_TIMEOUT_MS}).then(
      (key) => key !== undefined, () => undefined);
    if (found !== undefined) this.#setDrained(found);
  }

  #setDrained(drained: boolean): void {
    if (drained === this.#drained) return;
    this.#drained = drained;
    this.#deps.log.notice(drained ? `(drain) this host is drained: it does not take ${this.#names()} until \`baton resume\``
      : '(drain) this host is no longer drained');
  }

  async #watchDrained(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.#deps.clock.sleep(DRAINED_READ_MS, signal).catch(() => undefined);
      if (!signal.aborted) await this.#readDrained();
      if (!signal.aborted) await this.#refreshOwnAddresses();
    }
  }

  /** At start: removes a drain's leftovers, and says in the presence value, per service, whether this host can drain it
   *  and its own addresses for it (what a taker's forward-strays sends to when this host gives the service away). */
  async #drainStart(): Promise<void> {
    const {config, log} = this.#deps;
    for (const {name, service} of config.services) {
      const drain = this.#deps.drain(service.interface);
      const leftovers: string[] = [];
      for (const ip of service.ips) {
        leftovers.push(...await drain.removeLeftovers(ip).catch((error: unknown) => [`nothing: looking failed: ${describeError(error)}`]));
      }
      if (leftovers.length > 0) log.warning(`(agent) removed what an interrupted drain of ${name} left: ${leftovers.join(', ')}`);
      const readiness = await drainReadiness({file: config.file, service, drain: config.drain}, drain)
        .catch((error: unknown) => ({unavailable: `looking failed: ${describeError(error)}`}));
      if (readiness.unavailable !== undefined && config.drain.enabled) {
        log.warning(`(drain) this host cannot drain ${name} when it gives it away: ${readiness.unavailable}`);
      }
      if (readiness.unavailable === undefined) this.#drainReady.add(name);
      this.#presence.setDrain(name, readiness);
    }
  }

  /** The own addresses as the interfaces have them now (a read, no process), into the presence value if they changed. */
  async #refreshOwnAddresses(): Promise<void> {
    for (const {name, service} of this.#deps.config.services) {
      if (this.#drainReady.has(name)) this.#presence.setDrain(name, await ownDrainAddresses(service, this.#deps.drain(service.interface)));
    }
  }
}

/** A switch's options when the agent itself asks for one (a drain, a sick holder's handover): the config's. */
const NO_OPTIONS = {dryRun: false, strict: false, minRequests: undefined, confirmTimeoutS: undefined, pauseAfter: undefined} as const;

/** What a drain did with one service of the drained host. */
type ServiceMove =
  | {readonly kind: 'moved'; readonly service: string; readonly result: SwitchResult; readonly text: string}
  | {readonly kind: 'elsewhere' | 'stuck'; readonly service: string; readonly result: SwitchResult | undefined; readonly text: string};

/** The key that drains a host: present, the host takes no service. */
export function drainedKey(prefix: string, host: string): string {
  return `${prefix}drained/${host}`;
}

function notInEtcdMode(what: string, instead: string): BatonError {
  return new BatonError('BAD_REQUEST', `this agent runs etcd mode, which has no ${what} yet: ${instead}`);
}

/** The hosts' beacons name baton's prefix in etcd (`/prod/baton/` → `prod.baton`): beacons of hosts that coordinate
 *  under another prefix are refused. */
function clusterName(prefix: string): string {
  return prefix.split('/').filter((part) => part !== '').join('.') || 'baton';
}
