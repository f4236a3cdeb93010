// An active host whose health checks fail hands the service IP to a healthy standby through the planned
// switchover (confirmed), and keeps trying while its checks keep failing: a sick host still serves better than
// none, so it keeps the IP while the standby cannot take it.

import type {SwitchResult} from './control-protocol.js';
import {describeError} from './errors.js';
import type {Logger} from './log.js';
import type {Clock} from './ports.js';
import type {MachineState} from './state-machine.js';

// A failed handover is tried again this long after: long enough not to flap, short against an outage of a sick
// host's service.
const HANDOVER_RETRY_MS = 30_000;

export interface HandoverDeps {
  readonly clock: Clock;
  readonly log: Logger;
  readonly peerRole: string;
  readonly signal: AbortSignal;
  readonly machine: () => MachineState;
  /** The peer's health as its last beacon reported it. */
  readonly peerHealth: () => string;
  readonly switchover: () => Promise<SwitchResult>;
}

/** Runs one handover loop at a time: a second failing flip while one runs adds nothing. */
export class HealthHandover {
  readonly #deps: HandoverDeps;
  #running = false;

  constructor(deps: HandoverDeps) {
    this.#deps = deps;
  }

  start(reason: string): void {
    if (this.#running) return;
    this.#running = true;
    void runHealthHandover(this.#deps, reason).finally(() => {
      this.#running = false;
    });
  }
}

async function runHealthHandover(deps: HandoverDeps, reason: string): Promise<void> {
  const {clock, log, peerRole, signal} = deps;
  while (deps.machine().health === 'failing' && deps.machine().name === 'active' && !signal.aborted) {
    const peer = deps.machine().peer;
    if (peer?.alive === true && peer.state === 'standby' && deps.peerHealth() === 'ok') {
      log.warning(`(health) handing the service IP over to the ${peerRole}: ${reason}`);
      try {
        const result = await deps.switchover();
        log.notice(`(health) handover ${result.switchId}: ${result.outcome}${result.reason === undefined ? '' : `: ${result.reason}`}`);
        if (result.outcome === 'done') return;
      } catch (error) {
        log.error(`(health) handover refused: ${describeError(error)}`);
      }
    } else {
      log.warning(`(health) checks fail but the ${peerRole} cannot take over (${peer?.alive === true ? `${peer.state}, health ${deps.peerHealth()}` : 'not alive'}): keeping the service IP`);
    }
    await clock.sleep(HANDOVER_RETRY_MS, signal).catch(() => undefined);
  }
}
