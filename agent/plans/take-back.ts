// The one decision of a giver whose switch broke off: take the service IP back, or leave it to the peer.

import type {Config} from '../config/schema.js';
import {addAll, isAnyInUse, removeAll} from '../net/service-addresses.js';
import type {PeerView} from '../state-machine.js';
import {executeUndo, type StepRun} from './executor.js';

/** What a giver whose switch broke off did about the IP; `why` says why it did not take it back. */
export type TakeBack = {readonly tookBack: true} | {readonly tookBack: false; readonly why: string};

/**
 * Undoes primary-net-down on a giver whose switch broke off, but only when this host is the one to decide and the
 * IP is free. A live peer that holds the IP keeps it. A live primary decides itself (it takes a free IP at its
 * start, or as a standby beside a standby, see state-machine.ts), so a backup leaves it to it: two hosts that
 * restart together would otherwise both find the IP free and both take it. Otherwise the IP is taken back when
 * nothing answers an ARP probe for it: a taker whose agent died after backup-net-up keeps the address in its
 * kernel and still serves. Throws when it cannot tell (the probe failed) or the undo failed.
 *
 * Link mode: the giver's address sits on its downed link, and arping cannot probe through a downed link. The link
 * may only come up without the address (with it, this host would answer before knowing it may), so the address
 * comes off, the link comes up, and the address goes back on only if taken back. Otherwise the link stays up
 * without it, as a standby's is.
 */
export async function takeBackIfFree(run: StepRun, node: Config['node'], peer: PeerView | undefined): Promise<TakeBack> {
  const {network, service} = run.ctx;
  const {ips, interface: iface, mode} = service;
  if (mode === 'link' && !(await network.isLinkUp(iface))) {
    await removeAll(network, ips);
    await network.setLink(iface, true);
  }
  if (peer?.alive === true && peer.holdsIp) return {tookBack: false, why: `the peer ${peer.state} holds the service IP`};
  if (peer?.alive === true && node === 'backup') return {tookBack: false, why: `the primary is alive (${peer.state}) and takes the service IP itself`};
  if (await isAnyInUse(network, ips)) {
    return {tookBack: false, why: `${ips.map((ip) => ip.address).join(' or ')} answers ${ips.length === 1 ? 'ARP' : 'a duplicate-address probe'} from another host`};
  }
  if (mode === 'link') await addAll(network, ips);
  await executeUndo('primary-net-down', run);
  return {tookBack: true};
}
