// The drain's two parts that are not steps of the catalogue (steps.ts has hold-connections, forward-strays, end-forwarding
// and end-hold): whether this host can drain, and the giver's wait for its connections to end (drain-connections).
// One code for both coordinations: a pair's participant and an etcd switch call these.

import type {Config} from '../config/schema.js';
import {describeError} from '../errors.js';
import type {Logger} from '../log.js';
import {ownDrainAddresses, type OwnDrainAddresses} from '../net/service-addresses.js';
import type {Clock, CommandRunner, DrainDriver} from '../ports.js';
import {STEP_DEADLINE_MS} from './executor.js';

/** Whether this host can drain, and the addresses the taker sends strays to when it is the giver: one of its own per
 *  service address, of that address's family, in the order of service.ips. */
export type DrainReadiness = OwnDrainAddresses;

/** How the drain ended on the giving host. */
export interface DrainEnd {
  readonly left: number;
  readonly ms: number;
  readonly graceful: string | undefined;
}

/** What the drain reads of a host's config (a pair's and an etcd host's alike). */
export interface DrainSettings {
  readonly file: string;
  readonly service: Config['service'];
  readonly drain: Config['drain'];
}

// The connections left on the giver are counted this often while the drain waits: a read of /proc, no process.
const DRAIN_POLL_MS = 100;

/** Whether a switch can drain on this host; as a giver, where the taker sends what is not its own. */
export async function drainReadiness(config: DrainSettings, drain: DrainDriver): Promise<DrainReadiness> {
  if (!config.drain.enabled) return {unavailable: `drain.enabled is false in ${config.file}`};
  if (config.service.mode !== 'address') return {unavailable: 'link mode downs the giver\'s interface, so nothing can reach its connections'};
  const unavailable = await drain.unavailable();
  if (unavailable !== undefined) return {unavailable};
  return await ownDrainAddresses(config.service, drain);
}

export interface DrainWaitDeps {
  readonly config: DrainSettings;
  readonly clock: Clock;
  readonly log: Logger;
  readonly drain: DrainDriver;
  /** Runs drain.graceful_command. */
  readonly runner: CommandRunner;
}

/**
 * The giver's drain (drain-connections), once the taker is confirmed: waits drain.graceful_after_s for its connections
 * to end by themselves, then runs drain.graceful_command for those left (the web server finishes its requests and
 * closes its keep-alive connections), then waits until no connection on the service IP is left, or `timeoutMs`. Never
 * throws for connections left: it says how many.
 */
export async function waitForDrain(deps: DrainWaitDeps, id: string, timeoutMs: number,
  onProgress?: (left: number, elapsedMs: number) => void): Promise<DrainEnd> {
  const {config, clock, log, runner, drain} = deps;
  const started = clock.now();
  const elapsed = (): number => clock.now() - started;
  // Every service address's connections: a dual-stack service's clients come over both.
  const openConnections = async (): Promise<number> => {
    let count = 0;
    for (const ip of config.service.ips) count += await drain.openConnections(ip);
    return count;
  };
  // Connections first get graceful_after_s to end by themselves: a server that ends a keep-alive connection by
  // answering "Connection: close" does it without a race, one told to close its idle connections does not.
  const waitUntil = async (untilMs: number): Promise<number> => {
    let left = await openConnections();
    while (left > 0 && elapsed() < untilMs) {
      onProgress?.(left, elapsed());
      await clock.sleep(Math.min(DRAIN_POLL_MS, Math.max(1, untilMs - elapsed())));
      left = await openConnections();
    }
    return left;
  };
  let left = await waitUntil(Math.min(config.drain.gracefulAfterS * 1000, timeoutMs));
  let graceful: string | undefined;
  if (config.drain.graceful !== undefined) {
    const {path, args} = config.drain.graceful;
    const line = [path, ...args].join(' ');
    if (left === 0) {
      graceful = `${line} not needed: no connection was left after ${Math.round(elapsed())} ms`;
    } else {
      try {
        await runner.run(path, args, {timeoutMs: STEP_DEADLINE_MS});
        graceful = `${line} ran with ${left} connection(s) open`;
      } catch (error) {
        graceful = `${line} failed: ${describeError(error)}`;
        log.warning(`(switch ${id}) drain: ${graceful}`);
      }
    }
  }
  left = await waitUntil(timeoutMs);
  const ms = Math.round(clock.now() - started);
  log.notice(`(switch ${id}) drain: ${left === 0 ? `no connection left after ${ms} ms` : `${left} connection(s) still open after the ${timeoutMs} ms drain timeout`}`);
  return {left, ms, graceful};
}
