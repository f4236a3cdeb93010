// THE catalogue of steps that move the service IP: for each step and each service mode (address, link), what
// it does (apply), how its effect is checked (verify: only an observed effect counts as done) and how it is
// taken back (undo, itself verified). Every plan (plans.ts) and every executor run (executor.ts) uses these.

import type {Config, ServiceMode} from '../config/schema.js';
import {BatonError} from '../errors.js';
import {addAll, describeAddresses, findAddresses, findServing, ownDrainAddresses, removeAll} from '../net/service-addresses.js';
import type {DrainDriver, NetworkDriver} from '../ports.js';
import {parseIpAddress} from '../net/ip-address.js';
import {ADDRESS_STILL_ANSWERS} from '../state-machine.js';
import type {StepName} from './plans.js';

/** What a step needs of its host. */
export interface StepContext {
  /** Every step acts on all of service.ips (one address, or an IPv4 and an IPv6 one that move together). */
  readonly service: Config['service'];
  readonly network: NetworkDriver;
  /** Gratuitous ARP (unsolicited NA) for every service address now; the agent's announcer repeats it a little later. */
  announce(): Promise<void>;
  /** Duplicate address detection: whether another host answers for any service address (a fresh early probe may
   *  answer). */
  probe(): Promise<boolean>;
  readonly drain: DrainDriver;
  /** The giver's own addresses on the service LAN, one per service address family, where forward-strays sends what
   *  is not the taker's; known once a switch with a drain has begun (empty before, and without a drain). */
  giverAddresses(): readonly string[];
}

export interface StepActions {
  /** Changes the host; what --dry-run records. */
  apply(ctx: StepContext): Promise<void>;
  /** Throws STEP_FAILED (or ADDRESS_IN_USE) saying what was found instead of the step's effect. */
  verify(ctx: StepContext): Promise<void>;
  /** Takes the step back and verifies that; idempotent. */
  undo(ctx: StepContext): Promise<void>;
}

export interface StepDefinition extends Record<ServiceMode, StepActions> {
  /** What the step does, in words, per mode: for --dry-run and the docs. */
  readonly does: Readonly<Record<ServiceMode, string>>;
}

const nothing = async (): Promise<void> => undefined;

function expect(ok: boolean, what: string): void {
  if (!ok) throw new BatonError('STEP_FAILED', what);
}

/** Present: all the service's addresses are on the interface; absent: none is. A mixed state is neither, and the
 *  message names the addresses that are not as they should be. */
async function expectAddress(ctx: StepContext, present: boolean): Promise<void> {
  const {ips, interface: iface} = ctx.service;
  const found = await findAddresses(ctx.network, ips);
  if (present) expect(found.absent.length === 0, `${describeAddresses(found.absent)} ${isAre(found.absent)} not on ${iface}`);
  else expect(found.present.length === 0, `${describeAddresses(found.present)} ${isAre(found.present)} still on ${iface}`);
}

function isAre(ips: readonly unknown[]): string {
  return ips.length === 1 ? 'is' : 'are';
}

async function expectLink(ctx: StepContext, up: boolean): Promise<void> {
  const iface = ctx.service.interface;
  expect(await ctx.network.isLinkUp(iface) === up, up ? `${iface} is not up` : `${iface} is still up`);
}

/** Removes the service IP and checks it is gone: a release, and the undo of every step that added it. */
async function removeAddress(ctx: StepContext): Promise<void> {
  await removeAll(ctx.network, ctx.service.ips);
  await expectAddress(ctx, false);
}

async function setLink(ctx: StepContext, up: boolean): Promise<void> {
  await ctx.network.setLink(ctx.service.interface, up);
  await expectLink(ctx, up);
}

/** The giver serves again: its address back (and its link up), checked, and announced. */
async function restoreService(ctx: StepContext, mode: ServiceMode): Promise<void> {
  // Link mode too: an IPv4 address stays on a downed interface, but the kernel drops an IPv6 one with the link
  // (unless keep_addr_on_down). Added back while the link is still down, it is there when the link comes up.
  await addAll(ctx.network, ctx.service.ips);
  if (mode === 'link') await ctx.network.setLink(ctx.service.interface, true);
  await expectAddress(ctx, true);
  if (mode === 'link') await expectLink(ctx, true);
  await ctx.announce();
}

/**
 * Whether the host answers for the IP as clients see it, read from the kernel without spawning a process. Serving:
 * for all the service's addresses; not serving: for none. `what` is told the addresses that are not so, and "is"
 * or "are" to go with them.
 */
async function expectServing(ctx: StepContext, serving: boolean, what: (wrong: string, isOrAre: string) => string): Promise<void> {
  const found = await findServing(ctx.network, ctx.service.ips);
  const wrong = serving ? found.absent : found.present;
  expect(wrong.length === 0, what(describeAddresses(wrong), isAre(wrong)));
}

const takeIp: StepActions = {
  async apply(ctx) {
    await addAll(ctx.network, ctx.service.ips);
  },
  verify: (ctx) => expectServing(ctx, true, (wrong, isOrAre) => `${wrong} ${isOrAre} not up on ${ctx.service.interface} after adding it`),
  undo: removeAddress,
};

const releaseIp: StepActions = {
  async apply(ctx) {
    await removeAll(ctx.network, ctx.service.ips);
  },
  verify: (ctx) => expectAddress(ctx, false),
  async undo(ctx) {
    await addAll(ctx.network, ctx.service.ips);
    await expectAddress(ctx, true);
  },
};

const probeAddress: StepActions = {
  async apply(ctx) {
    if (await ctx.probe()) {
      const addresses = ctx.service.ips.map((ip) => ip.address).join(' or ');
      throw new BatonError('ADDRESS_IN_USE', `${ADDRESS_STILL_ANSWERS}: ${addresses} answered ${ctx.service.ips.length === 1 ? 'an ARP probe' : 'a duplicate-address probe'}`);
    }
  },
  verify: nothing,
  undo: nothing,
};

const announce: StepActions = {apply: (ctx) => ctx.announce(), verify: nothing, undo: nothing};

async function expectHolding(ctx: StepContext, holding: boolean): Promise<void> {
  for (const ip of ctx.service.ips) {
    expect(await ctx.drain.isHolding(ip) === holding, holding ? `${ip.address} is not held on lo for the drain` : `${ip.address} is still held on lo`);
  }
}

async function expectForwarding(ctx: StepContext, forwarding: boolean): Promise<void> {
  for (const ip of ctx.service.ips) {
    expect(await ctx.drain.isForwarding(ip) === forwarding, `the rule that hands strays for ${ip.address} to the giver is ${forwarding ? 'not' : 'still'} in place`);
  }
}

/** Takes the hold back on every service address, then checks. */
async function unholdAll(ctx: StepContext): Promise<void> {
  for (const ip of ctx.service.ips) await ctx.drain.unhold(ip);
}

const holdConnections: StepActions = {
  async apply(ctx) {
    // Every address's own address first, as check-config and the participant look them up: a dual-stack service is
    // held whole or not at all, and a host lacking one family's own address holds nothing.
    const own = await ownDrainAddresses(ctx.service, ctx.drain);
    if (own.unavailable !== undefined) throw new BatonError('STEP_FAILED', `${own.unavailable}: the taker would have nowhere to hand its strays; nothing held`);
    // One own address per service address, in the same order (ownDrainAddresses).
    for (const [index, ip] of ctx.service.ips.entries()) await ctx.drain.hold(ip, own.addresses[index] as string);
  },
  verify: (ctx) => expectHolding(ctx, true),
  async undo(ctx) {
    await unholdAll(ctx);
    await expectHolding(ctx, false);
  },
};

const forwardStrays: StepActions = {
  async apply(ctx) {
    const givers = ctx.giverAddresses();
    if (givers.length === 0) throw new BatonError('STEP_FAILED', 'the giver\'s address is not known: this switch has no drain');
    for (const ip of ctx.service.ips) {
      // Each service address's strays go to the giver's own address of the same family.
      const giver = givers.find((address) => parseIpAddress(address)?.family === ip.family);
      if (giver === undefined) throw new BatonError('STEP_FAILED', `the giver said no IPv${ip.family} address of its own (${givers.join(', ')}) to hand ${ip.address}'s strays to`);
      await ctx.drain.forward(ip, giver);
    }
  },
  verify: (ctx) => expectForwarding(ctx, true),
  async undo(ctx) {
    await ctx.drain.unforward();
    await expectForwarding(ctx, false);
  },
};

/** A step that does the same in both modes. */
function inEitherMode(does: string, actions: StepActions): StepDefinition {
  return {does: {address: does, link: does}, address: actions, link: actions};
}

export const STEPS: Readonly<Record<StepName, StepDefinition>> = {
  'probe-address': inEitherMode('check that nothing answers ARP for the service IP', probeAddress),
  'take-ip': {
    does: {address: 'add the service IP', link: 'add the service IP and bring the service interface up'},
    address: takeIp,
    link: {
      async apply(ctx) {
        await addAll(ctx.network, ctx.service.ips);
        await ctx.network.setLink(ctx.service.interface, true);
      },
      verify: takeIp.verify,
      undo: removeAddress,
    },
  },
  'announce': inEitherMode('announce the service IP (gratuitous ARP)', announce),
  'release-ip': inEitherMode('remove the service IP', releaseIp),
  'backup-net-down': {
    does: {address: 'make sure the service IP is not on the interface', link: 'bring the service interface down'},
    address: {
      async apply(ctx) {
        await removeAll(ctx.network, ctx.service.ips);
      },
      verify: (ctx) => expectAddress(ctx, false),
      // Nothing was there to take back: the address was only made sure to be absent.
      undo: nothing,
    },
    link: {
      async apply(ctx) {
        await ctx.network.setLink(ctx.service.interface, false);
      },
      verify: (ctx) => expectLink(ctx, false),
      undo: (ctx) => setLink(ctx, true),
    },
  },
  'assign-ip': {
    does: {
      address: 'check the service interface is present and up (the IP is added at backup-net-up)',
      link: 'add the service IP to the downed service interface',
    },
    address: {
      // An added address answers ARP at once: in address mode it must wait for backup-net-up.
      apply: nothing,
      async verify(ctx) {
        expect(await ctx.network.isLinkUp(ctx.service.interface), `${ctx.service.interface} is down: the service IP could not be brought up on it`);
      },
      undo: nothing,
    },
    link: {
      async apply(ctx) {
        await addAll(ctx.network, ctx.service.ips);
      },
      async verify(ctx) {
        const {absent} = await findAddresses(ctx.network, ctx.service.ips);
        expect(absent.length === 0, `${describeAddresses(absent)} ${isAre(absent)} not on ${ctx.service.interface} after adding it`);
      },
      undo: removeAddress,
    },
  },
  'primary-net-down': {
    does: {address: 'remove the service IP', link: 'bring the service interface down'},
    address: {
      async apply(ctx) {
        await removeAll(ctx.network, ctx.service.ips);
      },
      // What matters is that this host no longer answers for the IP; the in-process interface list tells it
      // without spawning `ip`, a few milliseconds off the service gap.
      verify: (ctx) => expectServing(ctx, false, (wrong, isOrAre) => `${wrong} ${isOrAre} still on ${ctx.service.interface}`),
      undo: (ctx) => restoreService(ctx, 'address'),
    },
    link: {
      async apply(ctx) {
        await ctx.network.setLink(ctx.service.interface, false);
      },
      verify: (ctx) => expectServing(ctx, false, (wrong) => `${ctx.service.interface} still serves ${wrong}`),
      undo: (ctx) => restoreService(ctx, 'link'),
    },
  },
  'backup-net-up': {
    does: {address: 'add the service IP and announce it (gratuitous ARP)', link: 'bring the service interface up and announce the IP (gratuitous ARP)'},
    address: {
      // Announced at once, checked after: the first gratuitous ARP is what moves the clients, and every
      // millisecond before it is service gap. verify still decides whether the step is done.
      async apply(ctx) {
        await addAll(ctx.network, ctx.service.ips);
        await ctx.announce();
      },
      verify: (ctx) => expectAddress(ctx, true),
      undo: removeAddress,
    },
    link: {
      async apply(ctx) {
        await ctx.network.setLink(ctx.service.interface, true);
        await ctx.announce();
      },
      async verify(ctx) {
        await expectAddress(ctx, true);
        await expectLink(ctx, true);
      },
      undo: (ctx) => setLink(ctx, false),
    },
  },
  // Counted by the participant's traffic counter (traffic.ts), which the executor does not run.
  'confirm-traffic': inEitherMode('wait for real requests in the access log', {apply: nothing, verify: nothing, undo: nothing}),
  // The drain (address mode only; the plan leaves these out when it is off). Preparations come before
  // primary-net-down, so nothing of it runs while nobody answers for the IP.
  'forward-strays': inEitherMode('hand TCP packets of connections that are not its own (no SYN, no socket here) on to the giver', forwardStrays),
  'hold-connections': inEitherMode('keep accepting packets for the service IP (a /32 on lo) without answering ARP for it', holdConnections),
  // Waited for by the participant (graceful command, then the connections counted), which the executor does not run.
  'drain-connections': inEitherMode('run the graceful command, then wait until no connection on the service IP is left', {apply: nothing, verify: nothing, undo: nothing}),
  'end-forwarding': inEitherMode('remove the rule that hands strays to the giver', {
    apply: (ctx) => ctx.drain.unforward(),
    verify: (ctx) => expectForwarding(ctx, false),
    undo: nothing,
  }),
  'end-hold': inEitherMode('remove the service IP from lo and the ARP rules', {
    apply: unholdAll,
    verify: (ctx) => expectHolding(ctx, false),
    undo: nothing,
  }),
};

/** What the step does on its host, in words. */
export function describeStep(step: StepName, mode: ServiceMode): string {
  return STEPS[step].does[mode];
}
