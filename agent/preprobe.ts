// The takeover's duplicate-address probe, started before the dead timer runs out so that it overlaps the wait
// instead of adding to the outage.

import type {Clock, NetworkDriver} from './ports.js';
import {isAnyInUse} from './net/service-addresses.js';
import type {ServiceIp} from './state-machine.js';

// The probe (~200 ms, see main.ts) is started this long before the dead timer runs out. A result older than
// PROBE_FRESH_MS at takeover time is not used: the probe is run again.
const PREPROBE_LEAD_MS = 300;
const PROBE_FRESH_MS = 250;

interface Probe {
  readonly startedAt: number;
  endedAt: number | undefined;
  readonly result: Promise<boolean>;
}

export class PreProbe {
  readonly #clock: Clock;
  readonly #network: NetworkDriver;
  readonly #ips: readonly ServiceIp[];
  readonly #leadMs: number;
  #probe: Probe | undefined;

  constructor(clock: Clock, network: NetworkDriver, ips: readonly ServiceIp[], heartbeat: {readonly intervalMs: number; readonly deadAfterMs: number}) {
    this.#clock = clock;
    this.#network = network;
    this.#ips = ips;
    // Never before two beacons were missed.
    this.#leadMs = Math.min(PREPROBE_LEAD_MS, heartbeat.deadAfterMs - 2 * heartbeat.intervalMs);
  }

  /** How long before the dead timer the probe starts. */
  get leadMs(): number {
    return this.#leadMs;
  }

  /** How long until the next moment that matters (the probe's start, the dead timer), if one is ahead. */
  dueInMs(deadline: number): number | undefined {
    const now = this.#clock.now();
    return [deadline - this.#leadMs, deadline].map((at) => at - now).filter((ms) => ms > 0).sort((a, b) => a - b)[0];
  }

  /** Starts the probe when the dead timer (`deadline`) is within the lead, once per silence. */
  maybeStart(deadline: number): void {
    const now = this.#clock.now();
    if (deadline - now > this.#leadMs || now >= deadline) return;
    if (this.#probe !== undefined && this.#probe.startedAt >= deadline - this.#leadMs) return;
    const probe: Probe = {startedAt: now, endedAt: undefined, result: isAnyInUse(this.#network, this.#ips)};
    this.#probe = probe;
    probe.result.then(() => {
      probe.endedAt = this.#clock.now();
    }, () => undefined);
  }

  /** The early probe's answer (awaited if still running), when it started after `lastSeenAt` and is fresh. */
  fresh(lastSeenAt: number | undefined): Promise<boolean> | undefined {
    const probe = this.#probe;
    if (probe === undefined || probe.startedAt < (lastSeenAt ?? Infinity)) return undefined;
    if (probe.endedAt !== undefined && this.#clock.now() - probe.endedAt > PROBE_FRESH_MS) return undefined;
    return probe.result;
  }
}
