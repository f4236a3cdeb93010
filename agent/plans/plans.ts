// Pure: every plan that moves the service IP, as an ordered list of step names from the one catalogue
// (steps.ts); which host runs each step of a planned switch; and the rollback of what was applied.
//
// A host moves the IP on its own in three plans:
//
//   acquire    take-ip, announce                  the primary at start, nobody answering for the IP
//   takeover   probe-address, take-ip, announce   the peer is silent; a peer whose agent died may still serve,
//                                                 so the IP is probed first: never two holders
//   release    release-ip                         the lower epoch of two holders, or a host in fault
//
// A planned switch is the runbook's order, and it is what keeps the service IP from ever being live on both
// hosts:
//
//   taker  backup-net-down    the taker's service network is down (it must not answer for the IP yet)
//   taker  assign-ip          the taker is configured with the IP (link mode: on its downed interface)
//   giver  primary-net-down   the giver releases the IP
//   taker  backup-net-up      the taker brings the IP up and announces it (gratuitous ARP)
//   taker  confirm-traffic    the taker's access log shows real requests arriving after backup-net-up
//
// "giver" is the host that holds the IP (it plays "primary" in the step names), "taker" the one that will
// (it plays "backup"). A switchback is the same plan with the hosts in the other sides.

/** The steps a host runs alone, in the acquire, takeover and release plans. */
export const LOCAL_STEP_NAMES = ['probe-address', 'take-ip', 'announce', 'release-ip'] as const;
/** The steps of a planned switch, in the runbook's order. */
export const SWITCH_STEP_NAMES = ['backup-net-down', 'assign-ip', 'primary-net-down', 'backup-net-up', 'confirm-traffic'] as const;

export type LocalStepName = (typeof LOCAL_STEP_NAMES)[number];
export type SwitchStepName = (typeof SWITCH_STEP_NAMES)[number];
/** Stable kebab-case step ids, the same in plans, journal, logs, status, CLI and docs. */
export type StepName = LocalStepName | SwitchStepName;

export type LocalPlanName = 'acquire' | 'takeover' | 'release';

export const LOCAL_PLANS: Readonly<Record<LocalPlanName, readonly LocalStepName[]>> = {
  // Announce after the address is in place: clients and switches must learn the new MAC at once.
  acquire: ['take-ip', 'announce'],
  // The peer is silent, but a peer whose agent died may still serve: probe first, never two holders.
  takeover: ['probe-address', 'take-ip', 'announce'],
  release: ['release-ip'],
};

export type SwitchSide = 'giver' | 'taker';

export interface PlannedStep {
  readonly name: SwitchStepName;
  readonly on: SwitchSide;
}

export const SWITCHOVER_PLAN: readonly PlannedStep[] = [
  {name: 'backup-net-down', on: 'taker'},
  {name: 'assign-ip', on: 'taker'},
  {name: 'primary-net-down', on: 'giver'},
  {name: 'backup-net-up', on: 'taker'},
  {name: 'confirm-traffic', on: 'taker'},
];

export function isSwitchStepName(value: unknown): value is SwitchStepName {
  return typeof value === 'string' && (SWITCH_STEP_NAMES as readonly string[]).includes(value);
}

/** Which host of a switch runs the step. */
export function sideOf(step: SwitchStepName): SwitchSide {
  return SWITCHOVER_PLAN.find((s) => s.name === step)?.on ?? 'taker';
}

/** confirm-traffic only observes: there is nothing to undo. */
export function hasUndo(step: SwitchStepName): boolean {
  return step !== 'confirm-traffic';
}

/** The undo of the applied steps, newest first: only what was done is undone (keepalived's ip_addr->set). */
export function planRollback(applied: readonly SwitchStepName[]): PlannedStep[] {
  return [...applied].reverse().filter(hasUndo).map((name) => ({name, on: sideOf(name)}));
}
