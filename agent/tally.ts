// What the agent has done since it started that `baton status` does not show as a count: state transitions,
// announcements of the service IP, and the planned switches this host took part in, with their durations. The
// metrics endpoint reads it (agent/metrics.ts); everything else it shows comes from the status. Pure: times are
// passed in.

import type {NetworkDriver} from './ports.js';
import type {AgentStateName, SwitchOutcome} from './state-machine.js';

export const SWITCH_OUTCOMES: readonly SwitchOutcome[] = ['done', 'rolled-back', 'interrupted'];

/** One state change, and how often it happened. */
export interface TransitionCount {
  readonly from: AgentStateName;
  readonly to: AgentStateName;
  readonly count: number;
}

/** One ended switch as this host saw it. */
export interface EndedSwitch {
  readonly outcome: SwitchOutcome;
  /** From switch-begun to switch-ended on this host; undefined for one a restart found interrupted (its start is
   *  the previous run's). */
  readonly seconds: number | undefined;
}

export interface TallySnapshot {
  readonly transitions: readonly TransitionCount[];
  /** Announcements of the service IP (gratuitous ARP / unsolicited NA) that left without an error. */
  readonly announcements: number;
  /** In the order they ended. */
  readonly switches: readonly EndedSwitch[];
}

export class AgentTally {
  readonly #transitions = new Map<string, {from: AgentStateName; to: AgentStateName; count: number}>();
  #announcements = 0;
  // Every ended switch is kept: a switch takes seconds (its drain up to drain.timeout_s), so even one a minute for a
  // year is half a million small records; the histogram needs each duration, not a sample.
  readonly #switches: EndedSwitch[] = [];
  readonly #begun = new Map<string, number>();

  transition(from: AgentStateName, to: AgentStateName): void {
    const key = `${from} ${to}`;
    const entry = this.#transitions.get(key) ?? {from, to, count: 0};
    entry.count += 1;
    this.#transitions.set(key, entry);
  }

  announced(): void {
    this.#announcements += 1;
  }

  /** `at`: monotonic ms. A switch begun twice (both sides' events) keeps its first start. */
  switchBegun(switchId: string, at: number): void {
    if (!this.#begun.has(switchId)) this.#begun.set(switchId, at);
  }

  switchEnded(switchId: string, outcome: SwitchOutcome, at: number): void {
    const begun = this.#begun.get(switchId);
    this.#begun.delete(switchId);
    this.#switches.push({outcome, seconds: begun === undefined ? undefined : (at - begun) / 1000});
  }

  snapshot(): TallySnapshot {
    return {
      transitions: [...this.#transitions.values()].map((entry) => ({...entry})),
      announcements: this.#announcements,
      switches: [...this.#switches],
    };
  }
}

/** `network`, with each announcement that left without an error counted in `tally`: every announce of the agent, its
 *  plans' and its repeats', goes through the one driver the agent is given. */
export function countingAnnouncements(network: NetworkDriver, tally: AgentTally): NetworkDriver {
  return {
    hasAddress: (ip) => network.hasAddress(ip),
    addAddress: (ip) => network.addAddress(ip),
    removeAddress: (ip) => network.removeAddress(ip),
    setLink: (iface, up) => network.setLink(iface, up),
    isLinkUp: (iface) => network.isLinkUp(iface),
    announce: async (ip) => {
      await network.announce(ip);
      tally.announced();
    },
    isAddressInUse: (ip) => network.isAddressInUse(ip),
    isServing: (ip) => network.isServing(ip),
    isRunning: (iface) => network.isRunning(iface),
  };
}
