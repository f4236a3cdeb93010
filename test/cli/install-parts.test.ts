// The pure parts of `baton install`: the config text and unit it renders, the packages it copies, and the checks of
// its options (the install itself: install.test.ts).

import {readFile} from 'node:fs/promises';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import test from 'ava';
import {parseConfig} from '../../agent/config/schema.js';
import {planUnitSandbox} from '../../agent/config/unit-sandbox.js';
import {parseCommandLine, UsageError} from '../../cli/args.js';
import {selectProductionPackages} from '../../cli/install/program-files.js';
import {renderConfig, renderUnit, type ConfigAnswers} from '../../cli/install/texts.js';

const PACKAGE_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PRIMARY = ['--role', 'primary', '--listen', '192.0.2.11', '--peer', '192.0.2.12', '--service-ip',
  '192.0.2.100/24', '--interface', 'eth0', '--access-log', '/var/log/nginx/access.log'];
const ANSWERS: ConfigAnswers = {
  node: 'primary', pair: 'web', listen: '192.0.2.11', peer: '192.0.2.12', serviceIps: ['192.0.2.100/24'],
  interface: 'eth0', accessLog: undefined,
};

test('the config text reads back as the answers, whatever YAML would make of them unquoted', (t) => {
  const secret = (): {mode: number; content: Uint8Array} => ({mode: 0o100600, content: new Uint8Array(32)});
  const none = (): Error => new Error('no programs');
  const text = renderConfig({node: 'backup', pair: '1e3', listen: '2001:db8::12', peer: '2001:db8::11',
    serviceIps: ['2001:db8::100/64'], interface: 'eth0.100', accessLog: '/var/log/my site/access.log'});
  const config = parseConfig(text, 'baton.yaml', secret, none);
  t.is(config.pair, '1e3');
  t.is(config.node, 'backup');
  t.is(config.listen.address, '2001:db8::12');
  t.is(config.peer.address, '2001:db8::11');
  t.is(config.service.ip.cidr, '2001:db8::100/64');
  t.is(config.service.interface, 'eth0.100');
  t.is(config.confirm.accessLog, '/var/log/my site/access.log');
  t.is(config.onStop, 'keep');
  t.is(config.stateDir, '/var/lib/baton');
  t.is(config.controlSocket, '/run/baton/control.sock');
  t.is(parseConfig(renderConfig(ANSWERS), 'baton.yaml', secret, none).confirm.accessLog, undefined);
  // Every key line but the list above is a comment: the generated file explains itself.
  const keyLines = text.split('\n').filter((line) => /^\s*[a-z_]+:/.test(line));
  const commentLines = text.split('\n').filter((line) => line.startsWith('#'));
  t.true(commentLines.length >= keyLines.length, `${commentLines.length} comment lines for ${keyLines.length} keys`);
});

test('the config\'s commented metrics section, uncommented, turns metrics on for this host\'s address, IPv4 or IPv6', (t) => {
  const secret = (): {mode: number; content: Uint8Array} => ({mode: 0o100600, content: new Uint8Array(32)});
  const none = (): Error => new Error('no programs');
  const uncomment = (text: string): string => text.replace(/^# (metrics:|  enabled|  listen|  allow_from)/gm, '$1');
  const v4 = parseConfig(uncomment(renderConfig(ANSWERS)), 'baton.yaml', secret, none).metrics;
  t.deepEqual([v4.enabled, v4.listen, v4.allowFrom.length], [true, {address: '192.0.2.11', port: 7412}, 1]);
  const v6 = parseConfig(uncomment(renderConfig({...ANSWERS, listen: '2001:db8::11', peer: '2001:db8::12', serviceIps: ['2001:db8::100/64']})),
    'baton.yaml', secret, none).metrics;
  t.deepEqual(v6.listen, {address: '2001:db8::11', port: 7412});
  t.false(parseConfig(renderConfig(ANSWERS), 'baton.yaml', secret, none).metrics.enabled, 'off as written');
});

test('the unit names /opt/baton, rewritten only for another install directory', (t) => {
  const template = 'ExecStart=/opt/baton/node_modules/.bin/node /opt/baton/dist/agent/main.js\n';
  t.is(renderUnit(template, '/opt/baton'), template);
  t.is(renderUnit(template, '/srv/baton'), 'ExecStart=/srv/baton/node_modules/.bin/node /srv/baton/dist/agent/main.js\n');
});

test('the production packages are the lockfile\'s non-dev entries, Node itself included', async (t) => {
  const lock = JSON.parse(await readFile(join(PACKAGE_ROOT, 'package-lock.json'), 'utf8')) as unknown;
  const {required} = selectProductionPackages(lock, 'package-lock.json');
  for (const name of ['node', 'yaml', 'execa', 'nanoid', 'systeminformation', 'dgram-as-promised', 'prom-client']) {
    t.true(required.includes(`node_modules/${name}`), name);
  }
  for (const name of ['ava', 'typescript', '@types/node']) t.false(required.includes(`node_modules/${name}`), name);
  t.throws(() => selectProductionPackages({lockfileVersion: 1, dependencies: {}}, 'old.json'), {message: /lockfileVersion 2 or 3/});
});

test('install and uninstall options are checked with messages that say what to give', (t) => {
  const usage = (argv: string[]) => t.throws(() => parseCommandLine(argv), {instanceOf: UsageError})?.message;
  t.is(usage(['install', '--role', 'primary']), 'install needs --listen, --peer, --service-ip and --interface to ' +
    'write the config (or --keep-config to keep an installed one)');
  t.is(usage([...['install', ...PRIMARY.slice(2)], '--role', 'main']), '--role: expected primary or backup, got \'main\'');
  t.is(usage(['install', ...PRIMARY, '--root', 'target']), '--root: expected an absolute directory like /mnt/target, got \'target\'');
  t.is(usage(['install', '--keep-config', '--force']), '--force writes the config anew and --keep-config keeps it: give one of them');
  t.regex(usage(['install', '--keep-config', '--role', 'primary']) ?? '', /^--keep-config keeps the installed config, so --role would be ignored/);
  t.is(usage(['install', ...PRIMARY.slice(0, 2), '--listen', 'host-a', ...PRIMARY.slice(4)]),
    '--listen: expected an IPv4 or IPv6 address like 192.0.2.11, got \'host-a\'');
  t.is(usage(['install', ...PRIMARY.slice(0, 6), '--service-ip', '192.0.2.100', ...PRIMARY.slice(8)]),
    '--service-ip: expected an address with its prefix length like 192.0.2.100/24, got \'192.0.2.100\'');
  t.is(usage(['status', '--purge']), '--purge is an option of uninstall, not of status');
  t.deepEqual(parseCommandLine(['uninstall', '--root', '/mnt/target/', '--purge']), {name: 'uninstall', root: '/mnt/target', purge: true, force: false});
  t.like(parseCommandLine(['uninstall', '--force']), {name: 'uninstall', force: true});
  t.deepEqual(parseCommandLine(['install', '--keep-config']), {name: 'install', root: '/', answers: undefined, secretFrom: undefined, force: false,
    dryRun: false, skipHostCheck: false});
  t.like(parseCommandLine(['install', ...PRIMARY, '--skip-host-check']), {skipHostCheck: true});
  t.like(parseCommandLine(['install', '--keep-config', '--dry-run']), {dryRun: true});
  t.is(usage(['uninstall', '--dry-run']), '--dry-run is an option of switchover and install, not of uninstall');
  const parsed = parseCommandLine(['install', ...PRIMARY, '--root', '/mnt/t']);
  t.like(parsed, {name: 'install', root: '/mnt/t', force: false, answers: {node: 'primary', pair: 'web', listen: '192.0.2.11',
    peer: '192.0.2.12', serviceIps: ['192.0.2.100/24'], interface: 'eth0', accessLog: '/var/log/nginx/access.log'}});
});

test('install checks the form of the addresses it is given and leaves host rules to the config check', (t) => {
  const usage = (argv: string[]) => t.throws(() => parseCommandLine(argv), {instanceOf: UsageError})?.message;
  const withServiceIp = (cidr: string) => ['install', ...PRIMARY.slice(0, 6), '--service-ip', cidr, ...PRIMARY.slice(8)];
  t.is(usage(withServiceIp('192.0.2.100/33')),
    '--service-ip: expected an address with its prefix length like 192.0.2.100/24, got \'192.0.2.100/33\'');
  t.is(usage(withServiceIp('192.0.2/24')),
    '--service-ip: expected an address with its prefix length like 192.0.2.100/24, got \'192.0.2/24\'');
  t.is(usage(['install', ...PRIMARY.slice(0, 4), '--peer', '127.1', ...PRIMARY.slice(6)]),
    '--peer: expected an IPv4 or IPv6 address like 192.0.2.11, got \'127.1\'');
  // The network address is a well-formed CIDR: the config check says why it cannot be the service address.
  t.like(parseCommandLine(withServiceIp('192.0.2.0/24')), {answers: {serviceIps: ['192.0.2.0/24']}});
  t.like(parseCommandLine(withServiceIp('2001:db8::100/64')), {answers: {serviceIps: ['2001:db8::100/64']}});
});

test('--service-ip twice is a dual-stack service: one IPv4 and one IPv6 address, written as service.address\'s list', (t) => {
  const usage = (argv: string[]) => t.throws(() => parseCommandLine(argv), {instanceOf: UsageError})?.message;
  t.like(parseCommandLine(['install', ...PRIMARY, '--service-ip', '2001:db8::100/64']),
    {answers: {serviceIps: ['192.0.2.100/24', '2001:db8::100/64']}});
  // The config's own rule (readServiceAddresses), said of the options that broke it.
  t.is(usage(['install', ...PRIMARY, '--service-ip', '192.0.2.101/24']), '--service-ip: 192.0.2.100/24 and 192.0.2.101/24 are both ' +
    'IPv4 addresses; a service moves one address of each family: give one IPv4 and one IPv6 address for a dual-stack service');
  t.regex(usage(['install', ...PRIMARY.slice(0, 6), '--service-ip', '2001:db8::100/64', '--service-ip', '2001:db8::100/64', ...PRIMARY.slice(8)]) ?? '',
    /^--service-ip: 2001:db8::100\/64 and 2001:db8::100\/64 are both IPv6 addresses/);
  t.is(usage(['install', ...PRIMARY, '--service-ip', '2001:db8::100/64', '--service-ip', '2001:db8::101/64']), '--service-ip: given 3 times ' +
    '(192.0.2.100/24, 2001:db8::100/64, 2001:db8::101/64); a service has one address, or two moving together: give it once, or ' +
    'twice with one IPv4 and one IPv6 address');
  t.is(usage(['install', ...PRIMARY, '--service-ip', '2001:db8::100']),
    '--service-ip: expected an address with its prefix length like 192.0.2.100/24, got \'2001:db8::100\'');

  const secret = (): {mode: number; content: Uint8Array} => ({mode: 0o100600, content: new Uint8Array(32)});
  const none = (): Error => new Error('no programs');
  const text = renderConfig({...ANSWERS, serviceIps: ['192.0.2.100/24', '2001:db8::100/64']});
  t.true(text.includes('\n  address: [192.0.2.100/24, 2001:db8::100/64]\n'), text);
  const dual = parseConfig(text, 'baton.yaml', secret, none);
  t.deepEqual(dual.service.ips.map((ip) => ip.cidr), ['192.0.2.100/24', '2001:db8::100/64']);
  // The service addresses are in no allow-list (clients talk to the web server, not the agent): the drop-in a
  // dual-stack install writes is a single-stack one's, allowing loopback and the two beacon addresses.
  const single = parseConfig(renderConfig(ANSWERS), 'baton.yaml', secret, none);
  t.deepEqual(planUnitSandbox(dual), planUnitSandbox(single));
  t.deepEqual(planUnitSandbox(dual).ipAllow?.map(({address}) => address), ['localhost', '192.0.2.11', '192.0.2.12']);
});
