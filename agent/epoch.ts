// Epochs: the number a host holds the service IP under (the higher wins a conflict), their bounds, and the one way
// to raise one. Every epoch that comes in (beacon, peer request, state file, journal) is checked against the bound.
//
// Two kinds, never mixed: a pair's epoch is baton's own counter (MAX_EPOCH below); etcd mode's epoch is the service
// key's mod revision (MAX_ETCD_EPOCH), which etcd counts for the whole cluster and baton never raises itself.

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

/**
 * The largest epoch of etcd mode: 2^53 − 1, the largest integer a JavaScript number (and so JSON as baton reads it)
 * carries exactly. etcd mode's epoch is the service key's mod revision, an int64 that rises with every write to the
 * cluster, baton's or not: a busy shared etcd (a Kubernetes one at 1000 writes a second) passes MAX_EPOCH in 25 days,
 * so these epochs are carried as numbers up to this bound (status, hooks, the switch record, transaction compares) and
 * never checked against MAX_EPOCH. 2^53 writes take 285 years at a million writes a second; a revision past it is
 * refused where it comes in (etcd-gateway-store.ts) rather than rounded, since a rounded revision would make every
 * compare-and-swap on it fail, or name the wrong write.
 */
export const MAX_ETCD_EPOCH = Number.MAX_SAFE_INTEGER;
