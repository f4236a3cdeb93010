// Preflight: drift between the two hosts' software base, warnings about the target, strict refusal, the CLI text,
// and strict validation of a HostInfo received from the peer.

import test from 'ava';
import {
  assertPreflight, comparePreflight, encodeHostInfo, formatPreflight, MAX_HOST_INFO_TEXT, MAX_HOST_INFO_VERSIONS,
  MAX_TARGET_LOAD_PER_CORE, MIN_TARGET_AVAILABLE_BYTES, parseHostInfo,
} from '../../agent/preflight.js';
import {BatonError} from '../../agent/errors.js';
import type {HostInfo} from '../../agent/ports.js';

const GIB = 1024 ** 3;
const MIB = 1024 ** 2;

function host(overrides: Partial<HostInfo> = {}): HostInfo {
  return {
    hostname: 'web-a',
    os: {distro: 'Debian GNU/Linux', release: '12', kernel: '6.1.0-18-amd64', arch: 'x64'},
    versions: {mysql: '8.0.36', nginx: '1.22.1', openssl: '3.0.11', perl: '5.36.0'},
    loadPerCore: 0.12,
    memory: {totalBytes: 4 * GIB, availableBytes: 2 * GIB},
    ...overrides,
  };
}

test('identical hosts are ok, with no drift and no warnings', (t) => {
  const report = comparePreflight(host(), host({hostname: 'web-b'}), 'peer');
  t.true(report.ok);
  t.deepEqual(report.drift, []);
  t.deepEqual(report.warnings, []);
  t.notThrows(() => assertPreflight(report, true));
});

test('a MySQL minor version that differs is drift naming mysql and both versions', (t) => {
  const peer = host({versions: {...host().versions, mysql: '8.0.32'}});
  const report = comparePreflight(host(), peer, 'peer');
  t.false(report.ok);
  t.deepEqual(report.drift, [{item: 'mysql', self: '8.0.36', peer: '8.0.32'}]);
});

test('a program installed on one host only is drift, with undefined on the other side', (t) => {
  const peer = host({versions: {...host().versions, redis: '7.0.15'}});
  const report = comparePreflight(host(), peer, 'peer');
  t.deepEqual(report.drift, [{item: 'redis', self: undefined, peer: '7.0.15'}]);
  const reversed = comparePreflight(peer, host(), 'self');
  t.deepEqual(reversed.drift, [{item: 'redis', self: '7.0.15', peer: undefined}]);
});

test('a different kernel, OS release or architecture is drift', (t) => {
  const peer = host({os: {distro: 'Debian GNU/Linux', release: '11', kernel: '6.1.0-21-amd64', arch: 'arm64'}});
  const report = comparePreflight(host(), peer, 'peer');
  t.deepEqual(report.drift, [
    {item: 'os', self: 'Debian GNU/Linux 12', peer: 'Debian GNU/Linux 11'},
    {item: 'kernel', self: '6.1.0-18-amd64', peer: '6.1.0-21-amd64'},
    {item: 'arch', self: 'x64', peer: 'arm64'},
  ]);
});

test('a program named like an Object.prototype member is compared as a program, not read from the prototype', (t) => {
  const peer = host({versions: {...host().versions, constructor: '1.0'}});
  t.deepEqual(comparePreflight(host(), peer, 'peer').drift, [{item: 'constructor', self: undefined, peer: '1.0'}]);
});

test('strict refuses drift with PREFLIGHT_REFUSED and the message lists every item and both values', (t) => {
  const peer = host({
    os: {...host().os, kernel: '6.1.0-21-amd64'},
    versions: {nginx: '1.22.1', openssl: '3.0.11', perl: '5.36.0', mysql: '8.0.32'},
  });
  const report = comparePreflight(host(), peer, 'peer');
  const error = t.throws(() => assertPreflight(report, true), {instanceOf: BatonError});
  t.is(error.code, 'PREFLIGHT_REFUSED');
  t.regex(error.message, /differs from the peer on 2 items/);
  t.regex(error.message, /kernel \(this host 6\.1\.0-18-amd64, peer 6\.1\.0-21-amd64\)/);
  t.regex(error.message, /mysql \(this host 8\.0\.36, peer 8\.0\.32\)/);
  t.regex(error.message, /without --strict/);
});

test('strict names a program missing on one side as not installed', (t) => {
  const peer = host({versions: {nginx: '1.22.1', openssl: '3.0.11', perl: '5.36.0'}});
  const error = t.throws(() => assertPreflight(comparePreflight(host(), peer, 'peer'), true), {instanceOf: BatonError});
  t.regex(error.message, /mysql \(this host 8\.0\.36, peer not installed\)/);
});

test('without strict, drift does not throw', (t) => {
  const peer = host({versions: {...host().versions, mysql: '8.0.32'}});
  t.notThrows(() => assertPreflight(comparePreflight(host(), peer, 'peer'), false));
});

test('warnings do not make a report fail, and strict does not refuse them', (t) => {
  const busy = host({loadPerCore: 3});
  const report = comparePreflight(host(), busy, 'peer');
  t.true(report.ok);
  t.is(report.warnings.length, 1);
  t.notThrows(() => assertPreflight(report, true));
});

const loadWarning = test.macro({
  exec(t, loadPerCore: number, warned: boolean) {
    const report = comparePreflight(host(), host({loadPerCore}), 'peer');
    t.is(report.warnings.some((w) => w.startsWith(`load ${loadPerCore.toFixed(2)} per core is above 0.8`)), warned, report.warnings.join('; '));
  },
  title: (_provided, loadPerCore: number, warned: boolean) =>
    `a target load of ${loadPerCore} per core ${warned ? 'is' : 'is not'} warned about (limit ${MAX_TARGET_LOAD_PER_CORE})`,
});
test(loadWarning, 0.8, false);
test(loadWarning, 0.81, true);
test(loadWarning, 0, false);

const memoryWarning = test.macro({
  exec(t, totalBytes: number, availableBytes: number, warned: boolean) {
    const report = comparePreflight(host(), host({memory: {totalBytes, availableBytes}}), 'peer');
    t.is(report.warnings.some((w) => w.includes('memory available')), warned, report.warnings.join('; '));
  },
  title: (_provided, totalBytes: number, availableBytes: number, warned: boolean) =>
    `${availableBytes} of ${totalBytes} bytes available on the target ${warned ? 'is' : 'is not'} warned about`,
});
// 10 % of 10 GiB is 1 GiB, above the 256 MiB floor: the fraction decides.
test(memoryWarning, 10 * GIB, GIB, false);
test(memoryWarning, 10 * GIB, GIB - 1, true);
// 10 % of 1 GiB is 102.4 MiB, below the floor: the 256 MiB floor decides.
test(memoryWarning, GIB, MIN_TARGET_AVAILABLE_BYTES, false);
test(memoryWarning, GIB, MIN_TARGET_AVAILABLE_BYTES - 1, true);

test('only the target is judged: a loaded, full host that stays behind is not warned about', (t) => {
  const loaded = host({loadPerCore: 5, memory: {totalBytes: 4 * GIB, availableBytes: 10 * MIB}});
  t.deepEqual(comparePreflight(loaded, host(), 'peer').warnings, []);
  t.is(comparePreflight(loaded, host(), 'self').warnings.length, 2);
  t.is(comparePreflight(host(), loaded, 'peer').target.hostname, 'web-a');
});

test('formatPreflight shows each drift item with both hosts and the target\'s load and memory', (t) => {
  const self = host({os: {...host().os, kernel: '6.1.0-18'}});
  const peer = host({
    hostname: 'web-b', os: {...host().os, kernel: '6.1.0-21'},
    versions: {...host().versions, mysql: '8.0.32', redis: '7.0.15'},
    memory: {totalBytes: 3.8 * GIB, availableBytes: 1.9 * GIB},
  });
  const lines = formatPreflight(comparePreflight(self, peer, 'peer'), 'primary', 'backup').split('\n');
  t.deepEqual(lines, [
    'preflight: software base differs on 3 items',
    '  kernel  primary 6.1.0-18       backup 6.1.0-21',
    '  mysql   primary 8.0.36         backup 8.0.32',
    '  redis   primary not installed  backup 7.0.15',
    '  target backup: load 0.12 per core, 1.9 GiB of 3.8 GiB available',
  ]);
});

test('formatPreflight says when the software base is identical and prints warnings under the target', (t) => {
  const peer = host({loadPerCore: 1.5, memory: {totalBytes: 2 * GIB, availableBytes: 100 * MIB}});
  const text = formatPreflight(comparePreflight(host(), peer, 'peer'), 'backup', 'primary');
  const lines = text.split('\n');
  t.is(lines[0], 'preflight: software base identical');
  t.is(lines[1], '  target primary: load 1.50 per core, 100 MiB of 2.0 GiB available');
  t.regex(lines[2] ?? '', /^ {2}warning: primary: load 1\.50 per core is above 0\.8/);
  t.regex(lines[3] ?? '', /^ {2}warning: primary: only 100 MiB of 2\.0 GiB memory available/);
  t.is(lines.length, 4);
});

test('formatPreflight names the local host as the target when it takes over', (t) => {
  const text = formatPreflight(comparePreflight(host(), host(), 'self'), 'backup', 'primary');
  t.regex(text, /target backup: load 0\.12 per core, 2\.0 GiB of 4\.0 GiB available/);
});

// ---- HostInfo on the wire ----

test('a HostInfo survives encode, JSON and parse unchanged', (t) => {
  const info = host();
  const wire: unknown = JSON.parse(JSON.stringify(encodeHostInfo(info)));
  t.deepEqual(parseHostInfo(wire), info);
});

test('encodeHostInfo sorts programs so the same host always encodes to the same JSON', (t) => {
  const a = encodeHostInfo(host({versions: {perl: '5.36.0', mysql: '8.0.36'}}));
  t.is(JSON.stringify(a.versions), '{"mysql":"8.0.36","perl":"5.36.0"}');
});

test('encodeHostInfo refuses what the peer would refuse, with the reason', (t) => {
  const error = t.throws(() => encodeHostInfo(host({versions: {nginx: ''}})), {instanceOf: RangeError});
  t.regex(error.message, /versions\.nginx/);
});

const rejected = test.macro({
  exec(t, mutate: (wire: Record<string, unknown>) => unknown, reason: RegExp) {
    const wire = JSON.parse(JSON.stringify(host())) as Record<string, unknown>;
    const result = parseHostInfo(mutate(wire));
    t.is(typeof result, 'string');
    t.regex(result as string, reason);
  },
  title: (provided = '') => `parseHostInfo rejects ${provided}`,
});

const withField = (key: string, value: unknown) => (wire: Record<string, unknown>) => ({...wire, [key]: value});
const withOs = (key: string, value: unknown) => (wire: Record<string, unknown>) => ({...wire, os: {...(wire['os'] as object), [key]: value}});
const withVersions = (versions: unknown) => withField('versions', versions);
const withMemory = (memory: unknown) => withField('memory', memory);

test('a value that is not an object', rejected, () => 'web-a', /expected a JSON object/);
test('null', rejected, () => null, /expected a JSON object/);
test('an array', rejected, () => [], /expected a JSON object/);
test('an unknown field', rejected, withField('extra', 1), /unknown field 'extra'/);
test('a hostname that is not a string', rejected, withField('hostname', 42), /field hostname/);
test('an empty hostname', rejected, withField('hostname', ''), /field hostname/);
test('a hostname longer than 253', rejected, withField('hostname', 'a'.repeat(254)), /field hostname/);
test('os that is a string', rejected, withField('os', 'Debian'), /field os/);
test('a kernel that is a number', rejected, withOs('kernel', 6), /field os\.kernel/);
test('a distro longer than the text limit', rejected, withOs('distro', 'D'.repeat(MAX_HOST_INFO_TEXT + 1)), /field os\.distro: expected a string of 0\.\.128/);
test('a kernel with a terminal escape sequence', rejected, withOs('kernel', '6.1\u001b[2J'), /field os\.kernel/);
test('an unknown os field', rejected, withOs('codename', 'bookworm'), /field os: unknown field 'codename'/);
test('versions that are an array', rejected, withVersions(['nginx']), /field versions/);
test('a version that is a number', rejected, withVersions({nginx: 1.22}), /field versions\.nginx/);
test('an empty version (not installed is an absent key)', rejected, withVersions({nginx: ''}), /field versions\.nginx/);
test('a version longer than the text limit', rejected, withVersions({nginx: '1'.repeat(MAX_HOST_INFO_TEXT + 1)}), /field versions\.nginx/);
test('a version with a bidi override', rejected, withVersions({nginx: '1.22\u202e1'}), /field versions\.nginx/);
test('a program name that is not a lower-case name', rejected, withVersions({'Nginx Server': '1.22'}), /program name 'Nginx Server'/);
test('a program name of __proto__', rejected, () => JSON.parse(`{"hostname":"a","os":{"distro":"","release":"","kernel":"","arch":""},"versions":{"__proto__":"1"},"loadPerCore":0,"memory":{"totalBytes":1,"availableBytes":0}}`), /program name '__proto__'/);
test('more than 32 programs', rejected,
  withVersions(Object.fromEntries(Array.from({length: MAX_HOST_INFO_VERSIONS + 1}, (_, i) => [`p${i}`, '1.0']))), /33 programs, at most 32/);
test('a load that is a string', rejected, withField('loadPerCore', '0.1'), /field loadPerCore/);
test('a negative load', rejected, withField('loadPerCore', -0.1), /field loadPerCore/);
test('an absurd load', rejected, withField('loadPerCore', 1e9), /field loadPerCore/);
test('memory without availableBytes', rejected, withMemory({totalBytes: GIB}), /field memory\.availableBytes/);
test('a fractional memory size', rejected, withMemory({totalBytes: 1.5, availableBytes: 1}), /field memory\.totalBytes/);
test('a total memory of zero', rejected, withMemory({totalBytes: 0, availableBytes: 0}), /field memory\.totalBytes/);
test('more memory available than installed', rejected, withMemory({totalBytes: GIB, availableBytes: 2 * GIB}), /more than totalBytes/);
test('an unknown memory field', rejected, withMemory({totalBytes: GIB, availableBytes: GIB, swapBytes: 0}), /unknown field 'swapBytes'/);

test('parseHostInfo never throws, whatever it is given', (t) => {
  const odd: unknown[] = [undefined, 0, true, Symbol('x'), () => 1, new Map(), Object.create(null), {os: null}, {hostname: 'a', os: {}}];
  for (const value of odd) t.notThrows(() => parseHostInfo(value));
});

test('parseHostInfo accepts 32 programs and texts of exactly the limit', (t) => {
  const versions = Object.fromEntries(Array.from({length: MAX_HOST_INFO_VERSIONS}, (_, i) => [`p${i}`, 'v'.repeat(MAX_HOST_INFO_TEXT)]));
  const info = host({versions, os: {...host().os, release: ''}});
  t.deepEqual(parseHostInfo(JSON.parse(JSON.stringify(info))), info);
});
