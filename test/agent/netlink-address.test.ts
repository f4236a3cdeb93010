// The netlink address helper against the real perl and kernel, in a network namespace of its own (TEST-NET-1 only):
// the address it adds is the one `ip address add` makes, the kernel's answers for "already there", "already gone"
// and a missing interface reach the caller in the kernel's words, and bad requests and a missing perl are refused.

import {randomBytes} from 'node:crypto';
import test, {type ExecutionContext} from 'ava';
import {execa} from 'execa';
import {NetlinkAddresses} from '../../agent/adapters/netlink-address.js';
import {isBatonError} from '../../agent/errors.js';

const NS = `blnl${randomBytes(3).toString('hex')}`;

interface AddrInfo {
  readonly family: string;
  readonly local: string;
  readonly prefixlen: number;
  readonly [key: string]: unknown;
}

async function addresses(dev: string, family: '-4' | '-6' = '-4'): Promise<AddrInfo[]> {
  const {stdout} = await execa('ip', ['-n', NS, '-j', family, 'addr', 'show', 'dev', dev, 'scope', 'global']);
  return (JSON.parse(stdout) as Array<{addr_info?: AddrInfo[]}>).flatMap((link) => link.addr_info ?? []);
}

/** A helper in the namespace, ended and the namespace's addresses flushed when the test ends. */
function helper(t: ExecutionContext): NetlinkAddresses {
  const netlink = new NetlinkAddresses({command: ['ip', 'netns', 'exec', NS, 'perl']});
  t.teardown(async () => {
    await netlink.close();
    for (const dev of ['v0', 'v1']) await execa('ip', ['-n', NS, 'addr', 'flush', 'dev', dev], {reject: false});
  });
  return netlink;
}

test.before(async () => {
  await execa('ip', ['netns', 'add', NS]);
  for (const command of [['link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1'], ['link', 'set', 'v0', 'up'], ['link', 'set', 'v1', 'up']]) {
    await execa('ip', ['-n', NS, ...command]);
  }
});

test.after.always(async () => {
  await execa('ip', ['netns', 'del', NS], {reject: false});
});

test.serial('the address it adds is the one `ip address add` makes; adding it twice is the kernel\'s "File exists"', async (t) => {
  const netlink = helper(t);
  await netlink.change('add', 'v0', '192.0.2.100', 25);
  await execa('ip', ['-n', NS, 'addr', 'add', '192.0.2.100/25', 'dev', 'v1']);
  const [mine] = await addresses('v0');
  const [ips] = await addresses('v1');
  t.truthy(mine, 'the address is on v0');
  const {label: _mine, ...ours} = mine ?? {family: '', local: '', prefixlen: 0};
  const {label: _ips, ...theirs} = ips ?? {family: '', local: '', prefixlen: 0};
  t.deepEqual(ours, theirs, 'same address, prefix, scope, flags and lifetimes as ip makes');

  const error = await t.throwsAsync(netlink.change('add', 'v0', '192.0.2.100', 25));
  t.true(isBatonError(error, 'COMMAND_FAILED'));
  t.is(isBatonError(error) ? error.details?.stderr : undefined, 'File exists');
  t.is(error?.message, 'address change (add v0 192.0.2.100 25) failed: File exists');
});

test.serial('an IPv6 address is the one `ip address add … nodad` makes: usable at once, never tentative; its removal and the kernel\'s refusals as for IPv4', async (t) => {
  const netlink = helper(t);
  await netlink.change('add', 'v0', '2001:DB8:0:1::100', 64);
  await execa('ip', ['-n', NS, '-6', 'addr', 'add', '2001:db8:0:1::100/64', 'dev', 'v1', 'nodad']);
  const [mine] = await addresses('v0', '-6');
  const [ips] = await addresses('v1', '-6');
  t.like(mine, {family: 'inet6', local: '2001:db8:0:1::100', prefixlen: 64, nodad: true});
  t.is(mine?.['tentative'], undefined);
  t.deepEqual(mine, ips, 'same address, prefix, scope, flags and lifetimes as ip makes');
  const exists = await t.throwsAsync(netlink.change('add', 'v0', '2001:db8:0:1::100', 64));
  t.is(isBatonError(exists) ? exists.details?.stderr : undefined, 'File exists');
  t.is(exists?.message, 'address change (add v0 2001:db8:0:1::100 64) failed: File exists');
  await netlink.change('del', 'v0', '2001:db8:0:1::100', 64);
  t.deepEqual(await addresses('v0', '-6'), []);
  const gone = await t.throwsAsync(netlink.change('del', 'v0', '2001:db8:0:1::100', 64));
  t.is(isBatonError(gone) ? gone.details?.stderr : undefined, 'Cannot assign requested address');
});

test.serial('removing takes exactly that address and prefix; removing it again is "Cannot assign requested address"', async (t) => {
  const netlink = helper(t);
  await netlink.change('add', 'v0', '192.0.2.100', 25);
  await netlink.change('add', 'v0', '192.0.2.100', 32);
  await netlink.change('del', 'v0', '192.0.2.100', 25);
  t.deepEqual((await addresses('v0')).map((a) => `${a.local}/${a.prefixlen}`), ['192.0.2.100/32'], 'the /32 is another address and stays');
  const error = await t.throwsAsync(netlink.change('del', 'v0', '192.0.2.100', 25));
  t.is(isBatonError(error) ? error.details?.stderr : undefined, 'Cannot assign requested address');
  await netlink.change('del', 'v0', '192.0.2.100', 32);
  t.deepEqual(await addresses('v0'), []);
});

test.serial('a missing interface is "NAME: No such device", and the helper goes on answering', async (t) => {
  const netlink = helper(t);
  const error = await t.throwsAsync(netlink.change('add', 'nosuch9', '192.0.2.100', 25));
  t.is(isBatonError(error) ? error.details?.stderr : undefined, 'nosuch9: No such device');
  await netlink.change('add', 'v0', '192.0.2.101', 25);
  await netlink.change('del', 'v0', '192.0.2.101', 25);
  t.is(netlink.unusable, undefined);
});

test('requests that would change the command line, addresses with a zone and impossible prefixes are refused before anything is sent', async (t) => {
  const netlink = new NetlinkAddresses({command: ['/nonexistent/perl']});
  for (const [iface, address, prefix] of [['v0 x', '192.0.2.100', 25], ['v0\nadd v0 192.0.2.1 24', '192.0.2.100', 25], ['', '192.0.2.100', 25],
    ['abcdefghijklmnop', '192.0.2.100', 25], ['v0', '2001:db8::1%v0', 64], ['v0', '2001:db8::1', 129], ['v0', '192.0.2.100 x', 25],
    ['v0', '192.0.2.100', 33], ['v0', '192.0.2.100', 2.5]] as const) {
    const error = await t.throwsAsync(netlink.change('add', iface, address, prefix));
    t.regex(error?.message ?? '', /^not an address change/, `${JSON.stringify(iface)} ${address}/${prefix}`);
  }
  t.is(netlink.unusable, undefined, 'nothing was started');
});

test('a helper program that cannot be started makes it unusable, with the reason', async (t) => {
  const netlink = new NetlinkAddresses({command: ['/nonexistent/perl']});
  const error = await t.throwsAsync(netlink.change('add', 'v0', '192.0.2.100', 25));
  t.regex(error?.message ?? '', /^cannot run `the netlink address helper \(perl\)`: spawn \/nonexistent\/perl ENOENT/);
  t.regex(netlink.unusable ?? '', /ENOENT/);
});
