// Epochs: the number a host holds the service IP under (the higher wins a conflict), their bound, and the one way
// to raise one. Every epoch that comes in (beacon, peer request, state file, journal) is checked against the bound.

/**
 * The largest epoch: 2^31 − 1. An epoch rises by one per move of the IP, so at one move a second it takes 68 years
 * to get here. Far below 2^53, so `epoch + 1` is always exact and the state file always loads again; a peer (even
 * one holding the key) that sends more is refused.
 */
export const MAX_EPOCH = 2_147_483_647;

/** What an epoch must be, for messages: "an integer 0..2147483647". */
export const EPOCH_EXPECTED = `an integer 0..${MAX_EPOCH}`;

export function isEpoch(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_EPOCH;
}

/**
 * The epoch to take the IP under, above all the given ones. At MAX_EPOCH it stays there: a tie is then settled by
 * role (the primary wins, see winsConflict), which still gives both hosts the same verdict.
 */
export function epochAbove(...epochs: readonly number[]): number {
  return Math.min(MAX_EPOCH, Math.max(0, ...epochs) + 1);
}
