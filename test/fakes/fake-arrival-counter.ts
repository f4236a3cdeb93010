// An ArrivalCounter whose connections a test makes arrive by hand: arrive(n) counts n new client connections to the
// service IP, seen only while the counter runs.

import {BatonError} from '../../agent/errors.js';
import type {ArrivalCounter} from '../../agent/ports.js';
import type {ServiceIp} from '../../agent/state-machine.js';

export class FakeArrivalCounter implements ArrivalCounter {
  /** What start() was given, while the counter runs. */
  running: {readonly ips: readonly ServiceIp[]; readonly excluded: readonly string[]} | undefined;
  /** Makes start() fail, as on a host without nftables. */
  failStart: string | undefined;
  /** A counter left by a crash, for removeLeftovers. */
  leftover = false;
  #count = 0;

  async start(ips: readonly ServiceIp[], excluded: readonly string[]): Promise<void> {
    if (this.failStart !== undefined) throw new BatonError('COMMAND_FAILED', this.failStart);
    this.running = {ips, excluded};
    this.#count = 0;
  }

  arrive(n = 1): void {
    if (this.running !== undefined) this.#count += n;
  }

  async count(): Promise<number> {
    if (this.running === undefined) throw new BatonError('COMMAND_FAILED', 'the arrival counter is gone (fake)');
    return this.#count;
  }

  async stop(): Promise<void> {
    this.running = undefined;
  }

  async removeLeftovers(): Promise<boolean> {
    const was = this.leftover || this.running !== undefined;
    this.leftover = false;
    this.running = undefined;
    return was;
  }
}
