#!/usr/bin/env node
// baton-agent's composition root: argv, config, adapters, signals (SIGTERM/SIGINT stop, SIGHUP reload, SIGUSR1 dump).

import {readFile} from 'node:fs/promises';
import {hostname, networkInterfaces} from 'node:os';
import {parseArgs} from 'node:util';
import {nanoid} from 'nanoid';
import {createAccessLogTail} from './adapters/access-log-tail.js';
import {createExecaRunner} from './adapters/execa-runner.js';
import {createSystemHostInfo} from './adapters/host-info.js';
import {createSystemHostProbe, processFileAccess, unitFileAccess} from './adapters/host-probe.js';
import type {FileAccess} from './config/unit-file-access.js';
import {checkHostOfAll, gatherHostFacts, HOST_PROBLEMS, type HostProblem, subjectsOfConfig} from './host-check.js';
import {createScriptRunner} from './adapters/script-runner.js';
import {createSystemHealthProbe} from './adapters/system-health-probe.js';
import {
  createSystemdNotifier, LAUNCHER, parseNotifyFd, runWatchdog, watchdogPingIntervalMs, type WatchdogEnvironment,
} from './adapters/systemd-notify.js';
import {HookRunner} from './hooks.js';
import {createRecordingRunner} from './adapters/recording-runner.js';
import {createFileJournalStore, createFileStateStore} from './adapters/file-journal.js';
import {ArpProber} from './adapters/arp-probe.js';
import {GarpSender} from './adapters/garp-sender.js';
import {IpBatch} from './adapters/ip-batch.js';
import {NetlinkAddresses} from './adapters/netlink-address.js';
import {createIpNetworkDriver, recordingGarp, recordingProber} from './adapters/ip-network-driver.js';
import {createNftArrivalCounter} from './adapters/nft-arrivals.js';
import {createNftDrainDriver} from './adapters/nft-drain-driver.js';
import {createSystemClock} from './adapters/system-clock.js';
import {createUdpTransport} from './adapters/udp-transport.js';
import {Agent} from './agent.js';
import {type AnyConfig, DEFAULT_CONFIG_FILE, type EtcdConfig, isEtcdConfig, loadAnyConfig, loadConfig, type Config} from './config/schema.js';
import {type AgentStatus, type AnyAgentStatus, type ControlStats, isEtcdStatus} from './control-protocol.js';
import {
  BIND_ALLOW_VARIABLE, boundingSetChangesUser, describeSandboxProblems, IP_ALLOW_VARIABLE, sandboxProblems,
  type RunningSandbox,
} from './config/unit-sandbox.js';
import {startControlServer} from './control-server.js';
import {describeError} from './errors.js';
import {createLogger, type Logger} from './log.js';
import type {MetricsServer} from './metrics-server.js';
import type {CommandRunner, NetworkDriver, ServiceManager} from './ports.js';
import {VERSION} from './version.js';
import {describeAddresses, describePartlyHeld} from './net/service-addresses.js';

const USAGE = `Usage: baton-agent [--config FILE] [--check-config] [--debug]

The baton agent: one runs on each host of a pair (primary and backup), exchanges
authenticated UDP beacons with its peer, holds or stands by for the service IP,
and answers the \`baton\` command on its control socket. Normally started by
systemd (baton-agent.service).

Options:
  --config FILE     configuration file (default ${DEFAULT_CONFIG_FILE})
  --check-config    validate the configuration and the secret file as SIGHUP
                    would (the unit's allow-lists included), and this host as
                    the unit will run the agent (as \`baton check-config\` does),
                    print every problem found, and exit: 0 valid, 1 on any
                    error; starts nothing
  --debug           also log debug lines
  -h, --help        show this help
  --version         print the version

Signals: SIGTERM/SIGINT stop (the service IP is kept or released per on_stop),
SIGHUP re-reads the configuration: an invalid one, or one this host could not
start with (see below), is refused and the agent keeps running on the old; a
valid one is applied by restarting in place (same PID, the service IP
untouched). SIGUSR1 logs a full status dump.

Under the unit, a config that needs an address or a port the unit's allow-lists
do not have (the drop-in \`baton install\` writes from the config) is refused,
at start and on SIGHUP: run \`baton install --keep-config\` after such a change.

At start it checks this host as \`baton check-config\` does and logs each problem
as a (host) line; it does not start without its service interface, \`ip\` or
\`arping\`, nor for an IPv6 service address without IPv6 on its interface or without
\`perl\` (its first takeover would fail).`;


// systemctl status shows the agent's STATUS= line: it is re-checked as often as the agent observes its own
// address (agent.ts OBSERVE_EVERY_MS), and sent only when it changed, so it is never staler than that.
const STATUS_REFRESH_MS = 1000;

/** What systemd told us in the environment (systemd.exec(5)), read once here like every other variable. */
interface SystemdEnvironment extends Omit<WatchdogEnvironment, 'pid'> {
  readonly notifySocket: string | undefined;
  /** BATON_NOTIFY_FD as the launcher set it (agent/adapters/systemd-notify.ts). */
  readonly notifyFd: string | undefined;
  /** The allow-lists of the unit's drop-in, as it passes them (agent/config/unit-sandbox.ts). */
  readonly ipAllow: string | undefined;
  readonly bindAllow: string | undefined;
}

// perl-base is Essential in Debian; an absolute path, as PATH is whatever the service manager gave.
const PERL = '/usr/bin/perl';

async function main(argv: readonly string[]): Promise<number> {
  let values;
  try {
    ({values} = parseArgs({
      args: [...argv],
      options: {
        config: {type: 'string', default: DEFAULT_CONFIG_FILE},
        'check-config': {type: 'boolean', default: false},
        debug: {type: 'boolean', default: false},
        help: {type: 'boolean', short: 'h', default: false},
        version: {type: 'boolean', default: false},
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    process.stderr.write(`baton-agent: ${describeError(error)}\n\n${USAGE}\n`);
    return 1;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`baton-agent ${VERSION}\n`);
    return 0;
  }

  // What SIGHUP would check, in this process's sandbox: the unit's ExecReload= runs it before it signals, so that
  // `systemctl reload` fails on a file the running agent would refuse (systemd 252 has no Type=notify-reload).
  if (values['check-config']) {
    let config: AnyConfig;
    try {
      config = await loadAnyConfig(values.config);
    } catch (error) {
      process.stderr.write(`baton-agent: ${describeError(error)}\n`);
      return 1;
    }
    const sandboxed = sandboxProblems(config, await runningSandbox(systemdEnvironment()));
    if (sandboxed.length > 0) {
      process.stderr.write(`baton-agent: ${describeSandboxProblems(config.file, sandboxed)}\n`);
      return 1;
    }
    // The host as the unit will run the agent (`baton check-config` says more: the drain, the installed drop-in).
    const problems = await runHostCheck(config, await unitFileAccess());
    const errors = problems.filter((problem) => problem.severity === 'error');
    const listed = problems.map((problem) => `  - ${problem.severity === 'warning' ? 'warning: ' : ''}${problem.message}\n`).join('');
    if (errors.length > 0) {
      process.stderr.write(`baton-agent: ${config.file}: this host cannot run it (${errors.length} error${errors.length === 1 ? '' : 's'}):\n${listed}`);
      return 1;
    }
    const who = isEtcdConfig(config) ? `host ${config.coordination.host} in etcd mode, ${config.services.map((s) =>
      `service ${s.name} ${describeAddresses(s.service.ips)} on ${s.service.interface}`).join(', ')}`
      : `${config.node} of pair ${config.pair}, service IP ${describeAddresses(config.service.ips)} on ${config.service.interface}`;
    process.stdout.write(`${config.file}: valid (${who})\n${listed}`);
    return 0;
  }

  const clock = createSystemClock();
  const log = createLogger({
    // systemd sets JOURNAL_STREAM when stderr/stdout go to the journal (systemd.exec(5)).
    journald: process.env['JOURNAL_STREAM'] !== undefined,
    debug: values.debug,
    write: (line) => process.stderr.write(line),
    wallNow: clock.wallNow,
  });

  // Under Type=notify, start again once through the launcher, in this same process, so that the agent itself holds
  // a socket connected to PID 1's and the unit can say NotifyAccess=main (agent/adapters/systemd-notify.ts).
  const execve = process.execve?.bind(process);
  if ((process.env['NOTIFY_SOCKET'] ?? '') !== '' && process.env['BATON_NOTIFY_FD'] === undefined && execve !== undefined) {
    try {
      execve(PERL, [PERL, '-e', LAUNCHER, '--', process.execPath, ...process.execArgv, ...process.argv.slice(1)], process.env);
    } catch (error) {
      log.warning(`(systemd) cannot start through ${PERL} to hold the notify socket, notifying through ` +
        `systemd-notify (needs NotifyAccess=all): ${describeError(error)}`);
    }
  }
  const systemd = systemdEnvironment();
  const notifyFd = parseNotifyFd(systemd.notifyFd);
  if (notifyFd !== undefined && typeof notifyFd !== 'number') {
    log.warning(`(systemd) no notify socket of our own (${notifyFd.why}); notifying through systemd-notify, which ` +
      'needs NotifyAccess=all');
  }
  // sd_notify(3)'s unset_environment: the children (ip, arping, hooks) must not inherit them. Without the
  // variables a hook does not even try to notify; if it writes to the descriptor it inherited, PID 1 refuses a
  // message that is not from the main PID (NotifyAccess=main).
  for (const name of ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID', 'BATON_NOTIFY_FD']) delete process.env[name];

  let config: AnyConfig;
  try {
    config = await loadAnyConfig(values.config);
  } catch (error) {
    log.error(`(config) ${describeError(error)}`);
    return 1;
  }
  const sandbox = await runningSandbox(systemd);
  const problems = sandboxProblems(config, sandbox);
  if (problems.length > 0) {
    log.error(`(config) ${describeSandboxProblems(config.file, problems)}`);
    return 1;
  }
  // This host as the agent sees it, in its own sandbox: each problem logged in check-config's words; those that
  // would make the first takeover fail keep it from starting (a standby that cannot take the IP must not look ready).
  const hostProblems = await runHostCheck(config, await processFileAccess());
  logHostProblems(log, hostProblems, '(host)');
  const fatal = blockingStart(hostProblems);
  if (fatal.length > 0) {
    log.error(`(host) not starting: ${fatal.map((problem) => problem.key ?? problem.kind).join(', ')} would make the first ` +
      'takeover fail (see above); `baton check-config` lists every problem');
    return 1;
  }
  return run(config, log, clock, systemd, sandbox);
}

function systemdEnvironment(): SystemdEnvironment {
  return {
    notifySocket: process.env['NOTIFY_SOCKET'],
    notifyFd: process.env['BATON_NOTIFY_FD'],
    watchdogUsec: process.env['WATCHDOG_USEC'],
    watchdogPid: process.env['WATCHDOG_PID'],
    ipAllow: process.env[IP_ALLOW_VARIABLE],
    bindAllow: process.env[BIND_ALLOW_VARIABLE],
  };
}

/** Each problem of the host check in check-config's words, as an error or a warning. */
function logHostProblems(log: Logger, problems: readonly HostProblem[], prefix: string): void {
  for (const problem of problems) {
    if (problem.severity === 'error') log.error(`${prefix} ${problem.message}`);
    else log.warning(`${prefix} ${problem.message}`);
  }
}

/** The problems that would make the first takeover fail: the agent does not start (or reload) with them. */
function blockingStart(problems: readonly HostProblem[]): HostProblem[] {
  return problems.filter((problem) => HOST_PROBLEMS[problem.kind].blocksStart);
}

/** The host check of the config on this host (host-check.ts), programs looked up in this process's PATH. */
async function runHostCheck(config: AnyConfig, access: FileAccess): Promise<HostProblem[]> {
  const probe = createSystemHostProbe({path: process.env['PATH'] ?? ''});
  return checkHostOfAll(subjectsOfConfig(config), (subject) => gatherHostFacts(subject, probe), access);
}

/** The sandbox this process runs in: the drop-in's lists, and whether the bounding set still lets setpriv work. */
async function runningSandbox(systemd: SystemdEnvironment): Promise<RunningSandbox> {
  // Only root changes user for the programs (script-runner.ts); for another user the question does not arise.
  const canChangeUser = process.geteuid?.() !== 0 ? undefined
    : await readFile('/proc/self/status', 'utf8').then(boundingSetChangesUser, () => undefined);
  return {ipAllow: systemd.ipAllow, bindAllow: systemd.bindAllow, canChangeUser};
}

async function run(config: AnyConfig, log: Logger, clock: ReturnType<typeof createSystemClock>, systemd: SystemdEnvironment,
  sandbox: RunningSandbox): Promise<number> {
  const runner = createExecaRunner();
  const notifyFd = parseNotifyFd(systemd.notifyFd);
  const service = createSystemdNotifier({
    runner, notifySocket: systemd.notifySocket, notifyFd: typeof notifyFd === 'number' ? notifyFd : undefined,
  });
  let watchdogMs: number | undefined;
  try {
    watchdogMs = watchdogPingIntervalMs({...systemd, pid: process.pid});
  } catch (error) {
    log.error(`(systemd) ${describeError(error)}`);
    return 1;
  }
  // Ends the watchdog and status loops on the way out, whichever way that is.
  const serviceLoops = new AbortController();
  if (watchdogMs !== undefined) {
    log.info(`(systemd) watchdog on: pinging every ${watchdogMs} ms`);
    let failing = false;
    void runWatchdog({
      manager: service, everyMs: watchdogMs, clock, signal: serviceLoops.signal,
      onPing: (error) => {
        // Logged once per failing spell: a ping every few seconds would otherwise flood the journal.
        if (error !== undefined && !failing) log.warning(`(systemd) watchdog ping failed, systemd may restart the agent: ${describeError(error)}`);
        if (error === undefined && failing) log.notice('(systemd) watchdog pings get through again');
        failing = error !== undefined;
      },
    });
  }
  try {
    // Outside systemd there is nobody to tell READY or STATUS to: no status loop either.
    const manager = systemd.notifySocket === undefined ? undefined : service;
    if (isEtcdConfig(config)) return await runEtcdAgent(config, log, clock, runner, manager, serviceLoops.signal);
    return await runAgent(config, log, clock, runner, manager, serviceLoops.signal, systemd, sandbox);
  } finally {
    serviceLoops.abort();
  }
}

/**
 * The network driver and its long-lived helpers, started now: no process start on the steps that open and close the
 * unowned window, nor in a takeover. closeHelpers ends them.
 */
function startNetwork(runner: CommandRunner, interfaces: readonly string[], families: readonly (4 | 6)[]) {
  // One packet of each form per announcement: the agent repeats it once after ANNOUNCE_REPEAT_MS.
  // The duplicate-address probe listens 150 ms: replies from a live holder came within 12-40 ms in the lab through
  // arping (3.75x margin), within 3.5 ms median, 5.5 ms max, through the long-lived prober below; the agent starts it
  // before the dead timer runs out, so it does not lengthen a takeover.
  const driverOptions = {announce: {count: 1, intervalMs: 1000}, probe: {timeoutMs: 150}};
  // The address and link changes go through one long-lived `ip -batch`, started now: no process start between
  // primary-net-down and backup-net-up, nor in a takeover.
  const batch = new IpBatch();
  batch.warm();
  // The same for the announcement after the address is added: a long-lived sender instead of an arping per packet.
  const garp = new GarpSender();
  garp.warm();
  // And the address itself (IPv6 with nodad): a netlink round trip from a long-lived helper, without ip's parsing and lookups,
  // on the two steps that open and close the unowned window.
  const netlink = new NetlinkAddresses();
  netlink.warm();
  // And the duplicate-address probe before a takeover: a long-lived prober instead of arping -D, which also spares
  // the unit's system-call filter arping's capset and setuid (systemd/baton-agent.service).
  const prober = new ArpProber();
  prober.warm(families);
  const closeHelpers = async (): Promise<void> => {
    await Promise.all([batch.close(), garp.close(), netlink.close(), prober.close()]);
  };
  // One driver per service interface (etcd mode: services may be on different ones); the helpers serve them all.
  const networks = new Map(interfaces.map((name) => [name, createIpNetworkDriver(runner, {...driverOptions, interface: name, batch, garp, netlink, prober})]));
  const networkFor = (name: string): NetworkDriver => {
    const network = networks.get(name);
    if (network === undefined) throw new Error(`no network driver for interface ${name}`);
    return network;
  };
  return {networkFor, driverOptions, closeHelpers};
}

/** Every address of this host's interfaces that are up, both families (Node's list, without zones). */
function interfaceAddresses(): string[] {
  return Object.values(networkInterfaces()).flat().map((entry) => entry?.address ?? '').filter((address) => address !== '');
}

async function runAgent(
  config: Config, log: Logger, clock: ReturnType<typeof createSystemClock>, runner: CommandRunner,
  service: ServiceManager | undefined, serviceLoopsSignal: AbortSignal, systemd: SystemdEnvironment, sandbox: RunningSandbox,
): Promise<number> {
  // The hook and command checks: as script_user when the agent is root (only root can change user), never with
  // the agent's capabilities or environment; see agent/adapters/script-runner.ts.
  const scriptRunner = createScriptRunner({
    runner, user: process.geteuid?.() === 0 ? config.scriptUser : undefined, lang: process.env['LANG'],
  });
  const {networkFor, driverOptions, closeHelpers} = startNetwork(runner, [config.service.interface], config.service.ips.map((ip) => ip.family));
  const network = networkFor(config.service.interface);
  let transport;
  try {
    transport = await createUdpTransport({listen: config.listen, peer: config.peer});
  } catch (error) {
    log.error(`(agent) ${describeError(error)}`);
    return 1;
  }
  const agent = new Agent({
    config, clock, transport, network, log,
    store: createFileStateStore(config.stateDir),
    journal: createFileJournalStore(config.stateDir),
    // Requests from the two hosts themselves (health checks, probes) must not count as traffic: both beacon
    // addresses, every address this host has when a confirmation starts, and those the peer told at its start
    // (hostAddresses, both families).
    accessLog: config.confirm.accessLog === undefined ? undefined : createAccessLogTail({
      file: config.confirm.accessLog,
      format: config.confirm.logFormat,
      rules: () => ({
        ownAddresses: [config.listen.address, config.peer.address, ...interfaceAddresses()],
        serviceAddresses: config.service.ips.map((ip) => ip.address),
        statuses: config.confirm.statuses,
      }),
    }),
    hostAddresses: interfaceAddresses,
    hostInfo: createSystemHostInfo(),
    healthProbe: createSystemHealthProbe(runner, {commandRunner: scriptRunner}),
    hooks: config.hooks.onStateChange === undefined ? undefined
      : new HookRunner({runner: scriptRunner, path: config.hooks.onStateChange, timeoutMs: config.hooks.timeoutMs, log, clock}),
    drain: createNftDrainDriver(runner, {interface: config.service.interface}),
    arrivals: createNftArrivalCounter(runner, {interface: config.service.interface}),
    runner,
    recordingDrivers: () => {
      const recorder = createRecordingRunner();
      return {network: createIpNetworkDriver(recorder, {...driverOptions, interface: config.service.interface, garp: recordingGarp(recorder), prober: recordingProber(recorder)}), drain: createNftDrainDriver(recorder, {interface: config.service.interface}),
        commands: () => recorder.commands()};
    },
    newId: () => nanoid(),
    hostname: hostname(),
    pid: process.pid,
  });
  // Before the agent starts: a metrics.listen this host cannot listen on stops it before it has touched anything.
  let metrics: MetricsServer | undefined;
  if (config.metrics.enabled) {
    const {listen, allowFrom} = config.metrics;
    const build = {version: VERSION, node: process.version};
    try {
      // Loaded only when on: prom-client and its dependencies add megabytes to the agent's RSS (7.5 MB measured with
      // the unit's --jitless --max-semi-space-size=1, part of it undici, which node:http's ESM import then loaded),
      // and the agent at rest is held to 64 MB (DESIGN's targets).
      const [{METRICS_CONTENT_TYPE, renderMetrics}, {startMetricsServer}] = await Promise.all([import('./metrics.js'), import('./metrics-server.js')]);
      metrics = await startMetricsServer({
        address: listen.address, port: listen.port, allowFrom, log,
        render: async () => ({contentType: METRICS_CONTENT_TYPE, text: await renderMetrics(await agent.metrics(), build, metrics?.refusals())}),
      });
    } catch (error) {
      log.error(`(metrics) ${describeError(error)}`);
      await transport.close();
      return 1;
    }
    const from = ['loopback', ...allowFrom.map((subnet) => `${subnet.network.address}/${subnet.prefixLength}`)].join(', ');
    log.notice(`(metrics) serving GET /metrics on ${listen.address.includes(':') ? `[${listen.address}]` : listen.address}:${listen.port} to ${from}`);
  }
  try {
    await agent.start();
  } catch (error) {
    log.error(`(agent) cannot start: ${describeError(error)}`);
    await transport.close();
    await metrics?.close();
    return 1;
  }
  let control;
  try {
    control = await startControlServer(config.controlSocket, agent, log);
  } catch (error) {
    log.error(`(control) ${describeError(error)}`);
    await agent.stop();
    await metrics?.close();
    return 1;
  }
  log.notice(`(control) listening on ${config.controlSocket}`);
  // What a stop or a restart in place closes before the agent stops: nothing is asked of it meanwhile.
  const closeServers = async (): Promise<void> => {
    await Promise.all([control.close(), metrics?.close()]);
  };

  const stopped = new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  process.on('SIGHUP', () => {
    void reloadChecked(config, sandbox, log).then((next) => {
      if (next !== undefined) return reloadInPlace(agent, closeServers, next, log, systemd, closeHelpers);
      return undefined;
    });
  });
  const signal = await serveUntilStopped(agent, control, service, stopped, {clock, log, signal: serviceLoopsSignal});
  log.notice(`(agent) ${signal}: stopping, on_stop ${config.onStop}`);
  await service?.stopping().catch((error: unknown) => log.warning(`(systemd) STOPPING=1 not sent: ${describeError(error)}`));
  await closeServers();
  try {
    await agent.shutdown(config.onStop);
  } catch (error) {
    log.error(`(agent) could not release ${describeAddresses(config.service.ips)}: ${describeError(error)}`);
    await agent.stop();
    return 1;
  }
  if (config.onStop === 'keep') log.notice(`(agent) left ${describeAddresses(config.service.ips)} as it is (on_stop: keep)`);
  await closeHelpers();
  return 0;
}

/**
 * SIGHUP: the file again, checked as the new image will check it at start (the file, the unit's allow-lists, the
 * host), so that a file it would refuse keeps this agent running on the old one instead of leaving no agent. The new
 * config when it may be applied; undefined, with the reason logged, when not. Never throws.
 */
async function reloadChecked(config: Config, sandbox: RunningSandbox, log: Logger): Promise<Config | undefined> {
  let next: Config;
  try {
    next = await loadConfig(config.file);
  } catch (error) {
    log.error(`(config) SIGHUP: keeping the running config, the new file is invalid: ${describeError(error)}`);
    return undefined;
  }
  const problems = sandboxProblems(next, sandbox);
  if (problems.length > 0) {
    log.error(`(config) SIGHUP: keeping the running config: ${describeSandboxProblems(config.file, problems)}`);
    return undefined;
  }
  try {
    const hostProblems = await runHostCheck(next, await processFileAccess());
    const fatal = blockingStart(hostProblems);
    if (fatal.length > 0) {
      log.error(`(config) SIGHUP: keeping the running config, this host cannot run the new one: ` +
        `${fatal.map((problem) => problem.message).join('; ')}`);
      return undefined;
    }
    logHostProblems(log, hostProblems, '(host) SIGHUP:');
  } catch (error) {
    log.error(`(config) SIGHUP: keeping the running config, the host check failed: ${describeError(error)}`);
    return undefined;
  }
  return next;
}

/**
 * SIGHUP with a valid new config: the agent stops as with on_stop: keep (the IP and the service stay as they
 * are) and execs itself with the same arguments, so the new config is read by a fresh start under the same PID
 * (systemd keeps its MainPID, and gets READY=1 again). Refused while a switch runs: a switch is never cut short.
 */
async function reloadInPlace(agent: Agent, closeServers: () => Promise<void>, config: Config, log: Logger, systemd: SystemdEnvironment,
  beforeExec: () => Promise<void>): Promise<void> {
  if (agent.state.name === 'switching') {
    log.warning(`(config) SIGHUP: ${config.file} is valid, but a switch is running; send SIGHUP again once it has ended`);
    return;
  }
  const execve = process.execve?.bind(process);
  if (execve === undefined) {
    log.warning(`(config) SIGHUP: ${config.file} is valid, but this Node cannot restart in place: restart the agent to apply it`);
    return;
  }
  log.notice(`(config) SIGHUP: ${config.file} is valid; restarting in place (same PID) to apply it, the service IP stays as it is`);
  await closeServers();
  await agent.shutdown('keep');
  // The systemd variables were taken out of our environment for the children's sake; the new image needs them.
  const env: NodeJS.ProcessEnv = {...process.env};
  if (systemd.notifySocket !== undefined) env['NOTIFY_SOCKET'] = systemd.notifySocket;
  if (systemd.watchdogUsec !== undefined) env['WATCHDOG_USEC'] = systemd.watchdogUsec;
  if (systemd.watchdogPid !== undefined) env['WATCHDOG_PID'] = systemd.watchdogPid;
  // The ip helper ends with its pipe, now rather than as a child the new image never reaps.
  await beforeExec();
  const argv = [process.execPath, ...process.execArgv, ...process.argv.slice(1)];
  // Node has marked the launcher's descriptor close-on-exec: under systemd 252 the new image found that number
  // reused (an epoll descriptor), READY=1 failed with EINVAL, and the watchdog killed the agent 10 s later. So the
  // new image starts through the launcher again, which connects a new socket; only a reason for having none (the
  // launcher could not connect at start) is passed on, so that the new image does not try again.
  if (typeof parseNotifyFd(systemd.notifyFd) === 'number' && (systemd.notifySocket ?? '') !== '') {
    try {
      execve(PERL, [PERL, '-e', LAUNCHER, '--', ...argv], env);
    } catch (error) {
      log.warning(`(systemd) cannot restart through ${PERL}: ${describeError(error)}; restarting without it`);
    }
  } else if (systemd.notifyFd !== undefined) {
    env['BATON_NOTIFY_FD'] = systemd.notifyFd;
  }
  execve(process.execPath, argv, env);
}

/**
 * While the agent runs, in either mode: SIGUSR1's status dump, READY=1 once the agent knows what it is (sockets bound,
 * config read, state decided; a stop before that never sends it, and systemd sees a start that ended, not a ready
 * service), and STATUS= kept current. Resolves with the name of the signal that stops it.
 */
async function serveUntilStopped(
  agent: {ready(): Promise<void>; status(): Promise<AnyAgentStatus>}, control: {stats(): ControlStats}, service: ServiceManager | undefined,
  stopped: Promise<string>, loops: {clock: ReturnType<typeof createSystemClock>; log: Logger; signal: AbortSignal},
): Promise<string> {
  const {log} = loops;
  process.on('SIGUSR1', () => {
    void agent.status().then((status) => log.notice(`(status) ${JSON.stringify({...status, control: control.stats()})}`));
  });
  const decided = await Promise.race([agent.ready().then(() => true), stopped.then(() => false)]);
  if (decided && service !== undefined) {
    const shown = describeService(await agent.status());
    await service.ready(shown).then(
      () => log.info(`(systemd) ready: ${shown}`),
      (error: unknown) => log.error(`(systemd) could not report ready, systemd will time the start out: ${describeError(error)}`));
    void keepStatusCurrent(agent, service, shown, loops);
  }
  return stopped;
}

/** Re-sends STATUS= whenever the observed state changes (a takeover, a switch), until `signal` aborts. */
async function keepStatusCurrent(
  agent: {status(): Promise<AnyAgentStatus>}, service: ServiceManager, shown: string,
  {clock, log, signal}: {clock: ReturnType<typeof createSystemClock>; log: Logger; signal: AbortSignal},
): Promise<void> {
  let last = shown;
  while (!signal.aborted) {
    try {
      await clock.sleep(STATUS_REFRESH_MS, signal);
      const now = describeService(await agent.status());
      if (now === last) continue;
      last = now;
      await service.status(now);
    } catch (error) {
      if (!signal.aborted) log.warning(`(systemd) status not sent: ${describeError(error)}`);
    }
  }
}

/** The STATUS= line: "primary active, holds 192.0.2.100/24" (a dual-stack service: both, or which part), as observed,
 *  not as intended; in etcd mode per service, "web-a: web holding (epoch 42), holds 192.0.2.100/24; blog standing by for web-b". */
function describeService(status: AnyAgentStatus): string {
  if (isEtcdStatus(status)) {
    return `${status.self.host}: ${status.services.map((service) => {
      const {claim} = service;
      const where = claim.phase === 'holding' ? `holding (epoch ${claim.epoch})`
        : claim.phase === 'standing-by' ? claim.error !== undefined ? 'standing by, etcd out of reach'
          : claim.holder === undefined ? 'standing by, nobody holds the key' : `standing by for ${claim.holder}`
          : claim.phase;
      return `${service.name} ${where}, ${holdsText(service)}`;
    }).join('; ')}`;
  }
  const pair = status as AgentStatus;
  return `${pair.self.role} ${pair.self.state}, ${holdsText({service: pair.service, holdsIp: pair.self.holdsIp, held: pair.self.held})}`;
}

/** Whether the addresses of a service are on this host, as observed: all, some (which), or none. */
function holdsText({service, holdsIp, held = []}: {service: {addresses: readonly string[]}; holdsIp: boolean | undefined; held?: readonly string[] | undefined}): string {
  const all = service.addresses.join(' and ');
  return holdsIp === undefined ? `cannot tell whether it holds ${all}`
    : holdsIp ? `holds ${all}`
      : held.length > 0 ? `service IP ${describePartlyHeld(held, service.addresses.filter((a) => !held.includes(a)))}`
        : `does not hold ${all}`;
}

/**
 * A host in etcd mode: the claim on the service, the control socket, and systemd's READY and STATUS. SIGTERM gives the
 * service up (the address, then the lease) so that the next host takes it at once rather than at the lease's expiry.
 */
async function runEtcdAgent(config: EtcdConfig, log: Logger, clock: ReturnType<typeof createSystemClock>, runner: CommandRunner,
  service: ServiceManager | undefined, serviceLoopsSignal: AbortSignal): Promise<number> {
  const scriptRunner = createScriptRunner({
    runner, user: process.geteuid?.() === 0 ? config.scriptUser : undefined, lang: process.env['LANG'],
  });
  // Loaded only in etcd mode: the client needs node:http, which a pair's agent does not load unless it must (its RSS).
  const [{createEtcdGatewayStore, readEtcdTls}, {EtcdAgent}] = await Promise.all([import('./adapters/etcd-gateway-store.js'),
    import('./coordination/etcd-agent.js')]);
  let store;
  try {
    store = createEtcdGatewayStore({endpoints: config.coordination.endpoints, tls: await readEtcdTls(config.coordination.tls),
      timeoutMs: 1000});
  } catch (error) {
    log.error(`(etcd) ${describeError(error)}`);
    return 1;
  }
  const beacons = config.coordination.beacons;
  let beaconSocket;
  if (beacons !== undefined) {
    const {createUdpBeaconSocket} = await import('./adapters/udp-beacon-socket.js');
    try {
      beaconSocket = await createUdpBeaconSocket({address: beacons.addresses[config.coordination.host] ?? '', port: beacons.port});
    } catch (error) {
      log.error(`(beacons) ${describeError(error)}`);
      store.close();
      return 1;
    }
  }
  const interfaces = [...new Set(config.services.map((s) => s.service.interface))];
  const {networkFor, closeHelpers} = startNetwork(runner, interfaces, [...new Set(config.services.flatMap((s) => s.service.ips.map((ip) => ip.family)))]);
  const agent = new EtcdAgent({
    ...beaconSocket === undefined ? {} : {beaconSocket},
    config, clock, store, log,
    network: networkFor,
    drain: (name) => createNftDrainDriver(runner, {interface: name}),
    runner,
    healthProbe: createSystemHealthProbe(runner, {commandRunner: scriptRunner}),
    hooks: config.hooks.onStateChange === undefined ? undefined
      : new HookRunner({runner: scriptRunner, path: config.hooks.onStateChange, timeoutMs: config.hooks.timeoutMs, log, clock}),
    hostname: hostname(),
    pid: process.pid,
    // Requests from this host itself (health checks, probes) are not client traffic.
    accessLog: ({service, confirm}) => confirm.accessLog === undefined ? undefined : createAccessLogTail({
      file: confirm.accessLog,
      format: confirm.logFormat,
      rules: () => ({ownAddresses: interfaceAddresses(), serviceAddresses: service.ips.map((ip) => ip.address), statuses: confirm.statuses}),
    }),
    newId: () => nanoid(),
  });
  let control;
  try {
    control = await startControlServer(config.controlSocket, agent, log);
  } catch (error) {
    log.error(`(control) ${describeError(error)}`);
    await closeHelpers();
    store.close();
    return 1;
  }
  log.notice(`(control) listening on ${config.controlSocket}`);
  agent.start();
  const stopped = new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  process.on('SIGHUP', () => {
    // A restart in place would leave the address without a renewing holder for as long as the new image takes to
    // start: in etcd mode the new config is applied by a restart, which hands the service to the next host.
    log.warning(`(config) SIGHUP: etcd mode does not reload in place; \`systemctl restart baton-agent\` applies ${config.file} ` +
      '(this host gives the service up, and the next host takes it)');
  });
  const signal = await serveUntilStopped(agent, control, service, stopped, {clock, log, signal: serviceLoopsSignal});
  log.notice(`(agent) ${signal}: stopping, giving up the services this host holds`);
  await service?.stopping().catch((error: unknown) => log.warning(`(systemd) STOPPING=1 not sent: ${describeError(error)}`));
  await control.close();
  await agent.shutdown();
  await closeHelpers();
  store.close();
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
