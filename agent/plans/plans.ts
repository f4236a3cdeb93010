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
// With the drain (address mode, on by default), connections open at the move finish on the giver:
//
//   taker  forward-strays     before the move: TCP that is not the taker's (no SYN, no socket) goes on to the giver
//   giver  hold-connections   before the move: the giver keeps accepting the IP's packets (on lo), answers no ARP
//   ...    primary-net-down, backup-net-up, confirm-traffic as above
//   giver  drain-connections  the giver's web server finishes gracefully; wait until no connection is left
//   taker  end-forwarding     the two preparations are taken back
//   giver  end-hold
//
// The last three come after the taker is confirmed: a failure there is reported and never rolls the switch back.
//
// "giver" is the host that holds the IP (it plays "primary" in the step names), "taker" the one that will
// (it plays "backup"). A switchback is the same plan with the hosts in the other sides.

/** The steps a host runs alone, in the acquire, takeover and release plans. */
export const LOCAL_STEP_NAMES = ['probe-address', 'take-ip', 'announce', 'release-ip'] as const;
/** The steps of a planned switch, in the runbook's order. */
export const SWITCH_STEP_NAMES = [
  'backup-net-down', 'assign-ip', 'forward-strays', 'hold-connections', 'primary-net-down', 'backup-net-up', 'confirm-traffic',
  'drain-connections', 'end-forwarding', 'end-hold',
] as const;

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

/** The switch with its drain, every step in order. */
export const SWITCHOVER_PLAN: readonly PlannedStep[] = [
  {name: 'backup-net-down', on: 'taker'},
  {name: 'assign-ip', on: 'taker'},
  {name: 'forward-strays', on: 'taker'},
  {name: 'hold-connections', on: 'giver'},
  {name: 'primary-net-down', on: 'giver'},
  {name: 'backup-net-up', on: 'taker'},
  {name: 'confirm-traffic', on: 'taker'},
  {name: 'drain-connections', on: 'giver'},
  {name: 'end-forwarding', on: 'taker'},
  {name: 'end-hold', on: 'giver'},
];

/** The steps that exist only when the switch drains. */
export const DRAIN_STEP_NAMES: readonly SwitchStepName[] = ['forward-strays', 'hold-connections', 'drain-connections', 'end-forwarding', 'end-hold'];
/** After the taker is confirmed: failures are reported, the switch is not rolled back. */
export const AFTER_CONFIRM_STEP_NAMES: readonly SwitchStepName[] = ['drain-connections', 'end-forwarding', 'end-hold'];

/** The plan of one switch: with its drain, or the five steps of the runbook alone. */
export function switchoverPlan(drain: boolean): readonly PlannedStep[] {
  return drain ? SWITCHOVER_PLAN : SWITCHOVER_PLAN.filter((step) => !DRAIN_STEP_NAMES.includes(step.name));
}

export function isSwitchStepName(value: unknown): value is SwitchStepName {
  return typeof value === 'string' && (SWITCH_STEP_NAMES as readonly string[]).includes(value);
}

/** Which host of a switch runs the step. */
export function sideOf(step: SwitchStepName): SwitchSide {
  return SWITCHOVER_PLAN.find((s) => s.name === step)?.on ?? 'taker';
}

/** confirm-traffic only observes, and what comes after it is never rolled back: there is nothing to undo. */
export function hasUndo(step: SwitchStepName): boolean {
  return step !== 'confirm-traffic' && !AFTER_CONFIRM_STEP_NAMES.includes(step);
}

/** The undo of the applied steps, newest first: only what was done is undone (keepalived's ip_addr->set). */
export function planRollback(applied: readonly SwitchStepName[]): PlannedStep[] {
  return [...applied].reverse().filter(hasUndo).map((name) => ({name, on: sideOf(name)}));
}
