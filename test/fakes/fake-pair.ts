// A primary and a backup Agent wired to fakes: one fake wire, one fake Ethernet segment, one fake clock.

import {Agent} from '../../agent/agent.js';
import {HookRunner} from '../../agent/hooks.js';
import type {Config} from '../../agent/config/schema.js';
import {createLogger} from '../../agent/log.js';
import type {DrainDriver, NetworkDriver} from '../../agent/ports.js';
import {FakeDrainDriver} from './fake-drain-driver.js';
import {RecordingRunner} from './recording-runner.js';
import type {Role} from '../../agent/state-machine.js';
import {FakeAccessLog} from './fake-access-log.js';
import {FakeClock} from './fake-clock.js';
import {FakeHealthProbe} from './fake-health-probe.js';
import {FakeHostInfo} from './fake-host-info.js';
import {FakeNetworkDriver, FakeSegment} from './fake-network-driver.js';
import {FakeArrivalCounter} from './fake-arrival-counter.js';
import {FakeTransport} from './fake-transport.js';
import {MemoryJournalStore} from './memory-journal-store.js';
import {MemoryStateStore} from './memory-state-store.js';
import {BACKUP_ADDRESS, BACKUP_ADDRESS6, PRIMARY_ADDRESS, PRIMARY_ADDRESS6, testConfig} from './test-config.js';

export interface FakeHost {
  agent: Agent;
  readonly role: Role;
  readonly network: FakeNetworkDriver;
  readonly drain: FakeDrainDriver;
  /** Runs the graceful command (recorded, not run). */
  readonly runner: RecordingRunner;
  readonly transport: FakeTransport;
  readonly store: MemoryStateStore;
  readonly journal: MemoryJournalStore;
  readonly accessLog: FakeAccessLog;
  readonly arrivals: FakeArrivalCounter;
  readonly hostInfo: FakeHostInfo;
  readonly healthProbe: FakeHealthProbe;
  readonly logs: string[];
  config: Config;
  /** This host's wall clock minus the shared one: step it to play one host's clock jumping (NTP, an operator). */
  wallSkewMs: number;
  /** Stops the agent dead, the way SIGKILL does: no clean-up touches the interface or the journal. */
  kill(): Promise<void>;
  /** A new Agent on the same fakes (same disk, interface and wire): what a restart after SIGKILL finds. */
  restart(): Agent;
}

export interface FakeHostOptions {
  readonly config?: Partial<Config>;
  readonly epoch?: number;
  readonly hostname?: string;
  readonly pid?: number;
  /** The host's own addresses besides the service IP it holds (none: the agent is given no list). */
  readonly hostAddresses?: readonly string[];
  /** hooks.on_state_change: a HookRunner on the host's RecordingRunner, so each call is in `runner.calls`. */
  readonly hookPath?: string;
}

export function createFakeHost(role: Role, clock: FakeClock, segment: FakeSegment, transport: FakeTransport, options: FakeHostOptions = {}): FakeHost {
  const config = testConfig(role, {confirm: {...testConfig(role).confirm, accessLog: '/var/log/nginx/access.log'}, ...options.config});
  const network = new FakeNetworkDriver(role, segment);
  const drain = new FakeDrainDriver(role === 'primary' ? PRIMARY_ADDRESS : BACKUP_ADDRESS, network.silenced, role === 'primary' ? PRIMARY_ADDRESS6 : BACKUP_ADDRESS6);
  const runner = new RecordingRunner();
  const store = new MemoryStateStore(options.epoch === undefined ? undefined : {epoch: options.epoch});
  const journal = new MemoryJournalStore();
  const accessLog = new FakeAccessLog();
  const arrivals = new FakeArrivalCounter();
  const hostInfo = new FakeHostInfo(options.hostname ?? `web-${role}`);
  const healthProbe = new FakeHealthProbe();
  const logs: string[] = [];
  // Monotonic time and sleeps are shared; only the wall clock can be skewed per host.
  const hostClock = {now: () => clock.now(), wallNow: () => clock.wallNow() + host.wallSkewMs, bootNow: () => clock.bootNow(), sleep: (ms: number, signal?: AbortSignal) => clock.sleep(ms, signal)};
  let boots = 0;
  let cutOffCurrent = (): void => undefined;
  const make = (): Agent => {
    boots += 1;
    let ids = 0;
    let dead = false;
    cutOffCurrent = () => {
      dead = true;
    };
    const isDead = (): boolean => dead;
    const log = createLogger({journald: true, debug: false, write: (line) => logs.push(line), wallNow: () => hostClock.wallNow()});
    const hooks = options.hookPath === undefined ? undefined : new HookRunner({runner, path: options.hookPath, timeoutMs: 1000, log, clock: hostClock});
    return new Agent({
      config: host.config,
      clock: cutOffOnKill(hostClock, isDead, ['sleep']),
      transport: cutOffOnKill(transport, isDead, ['send']),
      network: cutOffOnKill(network, isDead),
      store: cutOffOnKill(store, isDead),
      journal: cutOffOnKill(journal, isDead),
      accessLog: cutOffOnKill(accessLog, isDead),
      arrivals: cutOffOnKill(arrivals, isDead),
      hostInfo: cutOffOnKill(hostInfo, isDead),
      healthProbe, hooks,
      drain: cutOffOnKill(drain, isDead),
      runner,
      recordingDrivers: () => {
        const recorded: string[] = [];
        const recording = <T extends object>(target: T): T => new Proxy(target, {
          get: (real, name) => async (...args: unknown[]) => {
            recorded.push(`${String(name)} ${args.map((a) => (typeof a === 'object' && a !== null && 'cidr' in a ? String(a.cidr) : String(a))).join(' ')}`.trim());
            return Reflect.get(real, name) === undefined ? undefined : false;
          },
        });
        return {network: recording<NetworkDriver>(network), drain: recording<DrainDriver>(drain), commands: () => [...recorded]};
      },
      log,
      newId: () => `${role}${boots}id${++ids}`,
      hostname: options.hostname ?? `web-${role}`,
      hostAddresses: options.hostAddresses === undefined ? undefined : () => [...options.hostAddresses ?? [], ...network.addresses],
      pid: options.pid ?? 1000,
    });
  };
  const host: FakeHost = {
    agent: undefined as unknown as Agent, role, network, drain, runner, transport, store, journal, accessLog, arrivals, hostInfo, healthProbe, logs, config, wallSkewMs: 0,
    kill: async () => {
      await host.agent.stop();
      cutOffCurrent();
    },
    restart: () => {
      transport.reopen();
      host.agent = make();
      return host.agent;
    },
  };
  host.agent = make();
  return host;
}

/**
 * One process's hold on a port, cut when it is killed: after the kill each call of `methods` (all, by default)
 * returns a promise that never settles, as a SIGKILLed process never runs another line. Without it the killed
 * Agent's coroutines (a coordinator in its pause, an abandon) would go on acting on the interface, journal and
 * wire that the restarted agent shares.
 */
function cutOffOnKill<T extends object>(target: T, isDead: () => boolean, methods?: readonly string[]): T {
  return new Proxy(target, {
    get(object, name) {
      const value: unknown = Reflect.get(object, name, object);
      if (typeof value !== 'function' || (methods !== undefined && !methods.includes(String(name)))) {
        return typeof value === 'function' ? value.bind(object) : value;
      }
      return (...args: unknown[]) => (isDead() ? new Promise(() => undefined) : Reflect.apply(value, object, args));
    },
  });
}

export interface FakePair {
  readonly clock: FakeClock;
  readonly segment: FakeSegment;
  readonly primary: FakeHost;
  readonly backup: FakeHost;
}

export function createFakePair(t: {teardown(fn: () => Promise<void>): void}, options: {primary?: FakeHostOptions; backup?: FakeHostOptions} = {}): FakePair {
  const clock = new FakeClock();
  const segment = new FakeSegment();
  const [p, b] = FakeTransport.pair(PRIMARY_ADDRESS, BACKUP_ADDRESS);
  const primary = createFakeHost('primary', clock, segment, p, options.primary);
  const backup = createFakeHost('backup', clock, segment, b, options.backup);
  t.teardown(async () => {
    await primary.agent.stop();
    await backup.agent.stop();
  });
  return {clock, segment, primary, backup};
}
