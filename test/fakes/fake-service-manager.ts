// A ServiceManager that records each notification in order, with the fake clock's time, and fails on request.

import type {ServiceManager} from '../../agent/ports.js';
import type {FakeClock} from './fake-clock.js';

export type Notification = {readonly at: number} & (
  | {readonly type: 'ready'; readonly status: string}
  | {readonly type: 'watchdog'}
  | {readonly type: 'status'; readonly text: string}
  | {readonly type: 'stopping'});

export class FakeServiceManager implements ServiceManager {
  readonly sent: Notification[] = [];
  /** Each call throws this while set, as a systemd-notify that cannot reach PID 1 would. */
  failWith: Error | undefined;
  readonly #clock: FakeClock;

  constructor(clock: FakeClock) {
    this.#clock = clock;
  }

  async ready(status: string): Promise<void> {
    this.#record({type: 'ready', status, at: this.#clock.now()});
  }

  async watchdog(): Promise<void> {
    this.#record({type: 'watchdog', at: this.#clock.now()});
  }

  async status(text: string): Promise<void> {
    this.#record({type: 'status', text, at: this.#clock.now()});
  }

  async stopping(): Promise<void> {
    this.#record({type: 'stopping', at: this.#clock.now()});
  }

  #record(notification: Notification): void {
    if (this.failWith !== undefined) throw this.failWith;
    this.sent.push(notification);
  }
}
