// The sandbox a config needs (what `baton install` writes into the unit's drop-in), and the agent's check of a config
// against the sandbox it runs in: a new peer, port or hook is refused with the key, the value and the fix.

import test from 'ava';
import type {Config} from '../../../agent/config/schema.js';
import {
  bindAllowValue, boundingSetChangesUser, describeSandboxProblems, ipAllowValue, parseSandboxDropIn, planUnitSandbox,
  SOCKET_BIND_MIN_SYSTEMD, socketBindUnsupported,
  sandboxProblems, type RunningSandbox,
} from '../../../agent/config/unit-sandbox.js';
import {renderSandboxDropIn} from '../../../cli/install/texts.js';
import {testConfig} from '../../fakes/test-config.js';

const HTTP_DEFAULTS = {expectStatus: 200, timeoutMs: 1000} as const;
const SCRIPT_USER = {name: 'nobody', uid: 65534, gid: 65534} as const;

function withChecks(checks: Config['health']['checks'], overrides: Partial<Config> = {}): Config {
  return testConfig('primary', {health: {intervalMs: 1000, fall: 3, rise: 2, checks}, ...overrides});
}

/** The sandbox the drop-in for `config` gives, as the agent reads it from the environment and the kernel. */
function runningFor(config: Config): RunningSandbox {
  const sandbox = planUnitSandbox(config);
  // The drop-in takes CAP_SETUID and CAP_SETGID out of the bounding set exactly when nothing changes user.
  return {ipAllow: ipAllowValue(sandbox), bindAllow: bindAllowValue(sandbox), canChangeUser: sandbox.changesUser};
}

test('a plain config needs loopback, both beacon addresses and the beacon port, and no change of user', (t) => {
  const sandbox = planUnitSandbox(testConfig('primary'));
  t.deepEqual(sandbox.ipAllow, [
    {address: 'localhost', keys: ['loopback']},
    {address: '192.0.2.11', keys: ['listen.address']},
    {address: '192.0.2.12', keys: ['peer.address']},
  ]);
  t.deepEqual(sandbox.bindAllow, ['udp:7411']);
  t.false(sandbox.changesUser);
  t.is(ipAllowValue(sandbox), 'localhost,192.0.2.11,192.0.2.12');
});

test('the drop-in denies all IP traffic but the listed addresses, and every bind but the beacon port', (t) => {
  const text = renderSandboxDropIn(planUnitSandbox(testConfig('primary', {listen: {address: '192.0.2.11', port: 7500}})));
  const directives = text.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
  t.deepEqual(directives, [
    '[Service]',
    'IPAddressDeny=any',
    'IPAddressAllow=localhost 192.0.2.11 192.0.2.12',
    'SocketBindDeny=any',
    'SocketBindAllow=udp:7500',
    'CapabilityBoundingSet=~CAP_SETUID CAP_SETGID',
    'SystemCallFilter=~capset setuid setgid setresuid setresgid setgroups',
    'Environment=BATON_IP_ALLOW=localhost,192.0.2.11,192.0.2.12 BATON_BIND_ALLOW=udp:7500',
  ]);
  t.regex(text, /^# {3}192\.0\.2\.12 {2}peer\.address$/m, 'each address says which key needs it');
});

test('HTTP checks add their hosts; loopback ones fold into localhost; IPv6 without brackets or zone', (t) => {
  const config = withChecks([
    {kind: 'http', url: 'http://127.0.0.1/health', ...HTTP_DEFAULTS},
    {kind: 'http', url: 'http://localhost:8080/', ...HTTP_DEFAULTS},
    {kind: 'http', url: 'https://192.0.2.50/status', ...HTTP_DEFAULTS},
    {kind: 'http', url: 'http://[2001:db8::7]/health', ...HTTP_DEFAULTS},
    {kind: 'interface', interface: 'eth0'},
  ], {peer: {address: 'fe80::2%eth1', port: 7411}, listen: {address: 'fe80::1%eth1', port: 7411}});
  t.deepEqual(planUnitSandbox(config).ipAllow, [
    {address: 'localhost', keys: ['loopback', 'health.checks[0].http.url', 'health.checks[1].http.url']},
    {address: 'fe80::1', keys: ['listen.address']},
    {address: 'fe80::2', keys: ['peer.address']},
    {address: '192.0.2.50', keys: ['health.checks[2].http.url']},
    {address: '2001:db8::7', keys: ['health.checks[3].http.url']},
  ]);
});

test('an HTTP check that names its host leaves the IP allow-list out, and the drop-in says why', (t) => {
  const config = withChecks([{kind: 'http', url: 'http://web.example/health', ...HTTP_DEFAULTS}]);
  const sandbox = planUnitSandbox(config);
  t.is(sandbox.ipAllow, undefined);
  t.deepEqual(sandbox.namedHosts, [{key: 'health.checks[0].http.url', host: 'web.example'}]);
  const text = renderSandboxDropIn(sandbox);
  t.false(/^IPAddress/m.test(text));
  t.regex(text, /^# No IP allow-list: health\.checks\[0\]\.http\.url \(web\.example\) names its host/m);
  t.regex(text, /^SocketBindAllow=udp:7411$/m, 'the port list stays');
  t.regex(text, /^Environment=BATON_IP_ALLOW=any /m);
  t.deepEqual(sandboxProblems(config, runningFor(config)), []);
});

test('a hook or command check keeps CAP_SETUID and CAP_SETGID: setpriv needs them', (t) => {
  const config = testConfig('primary', {scriptUser: SCRIPT_USER, hooks: {onStateChange: '/usr/local/bin/notify', timeoutMs: 5000}});
  const sandbox = planUnitSandbox(config);
  t.true(sandbox.changesUser);
  t.false(renderSandboxDropIn(sandbox).includes('CapabilityBoundingSet'));
  t.false(renderSandboxDropIn(sandbox).includes('SystemCallFilter'), 'setpriv keeps its system calls');
});

test('the config the drop-in was written for fits it', (t) => {
  const config = withChecks([{kind: 'http', url: 'http://192.0.2.50/', ...HTTP_DEFAULTS}]);
  t.deepEqual(sandboxProblems(config, runningFor(config)), []);
});

test('without the drop-in\'s variables there is nothing to compare with, and nothing is refused', (t) => {
  const config = testConfig('primary', {peer: {address: '203.0.113.12', port: 7500}});
  t.deepEqual(sandboxProblems(config, {ipAllow: undefined, bindAllow: undefined, canChangeUser: undefined}), []);
});

test('a new peer address, port or HTTP check host is refused with the key, the value and what is allowed', (t) => {
  const installed = runningFor(testConfig('primary'));
  const edited = withChecks([{kind: 'http', url: 'http://198.51.100.9/health', ...HTTP_DEFAULTS}], {
    peer: {address: '203.0.113.12', port: 7411}, listen: {address: '192.0.2.11', port: 7500},
  });
  t.deepEqual(sandboxProblems(edited, installed), [
    'peer.address 203.0.113.12: not in IPAddressAllow= (localhost 192.0.2.11 192.0.2.12)',
    'health.checks[0].http.url 198.51.100.9: not in IPAddressAllow= (localhost 192.0.2.11 192.0.2.12)',
    'listen.port 7500: not in SocketBindAllow= (udp:7411)',
  ]);
  // The peer's own port is not bound here: a change of it alone needs nothing.
  t.deepEqual(sandboxProblems(testConfig('primary', {peer: {address: '192.0.2.12', port: 7500}}), installed), []);
});

test('a named host is refused under an IP allow-list: the list cannot follow it', (t) => {
  const installed = runningFor(testConfig('primary'));
  const edited = withChecks([{kind: 'http', url: 'http://web.example/health', ...HTTP_DEFAULTS}]);
  t.deepEqual(sandboxProblems(edited, installed), ['health.checks[0].http.url names the host web.example, which an IP ' +
    'allow-list cannot follow; the drop-in allows IP traffic with localhost 192.0.2.11 192.0.2.12 only']);
});

test('a first hook is refused where the bounding set has no CAP_SETUID', (t) => {
  const installed = runningFor(testConfig('primary'));
  const edited = testConfig('primary', {scriptUser: SCRIPT_USER, hooks: {onStateChange: '/usr/local/bin/notify', timeoutMs: 5000}});
  const problems = sandboxProblems(edited, installed);
  t.is(problems.length, 1);
  t.regex(problems[0] ?? '', /^hooks\.on_state_change or a command check runs as script_user, which needs CAP_SETUID and CAP_SETGID and the system calls capset setuid setgid setresuid setresgid setgroups;/);
  // Where the set still has them (an override gave them back), the hook can run.
  t.deepEqual(sandboxProblems(edited, {...installed, canChangeUser: true}), []);
});

test('the refusal names the drop-in and the commands that rewrite and apply it', (t) => {
  t.is(describeSandboxProblems('/etc/baton/baton.yaml', ['listen.port 7500: not in SocketBindAllow= (udp:7411)']),
    '/etc/baton/baton.yaml needs what this agent\'s systemd sandbox does not allow:\n' +
    '  - listen.port 7500: not in SocketBindAllow= (udp:7411)\n' +
    'The sandbox\'s lists come from /etc/systemd/system/baton-agent.service.d/50-baton-config.conf, which `baton ' +
    'install` writes from the config: run `baton install --keep-config` to write it for this config, then ' +
    '`systemctl restart baton-agent`');
});

test('CAP_SETUID and CAP_SETGID are read from the bounding set in /proc/self/status', (t) => {
  // The unit's set: CAP_NET_ADMIN (12), CAP_NET_RAW (13), CAP_SETGID (6), CAP_SETUID (7).
  t.true(boundingSetChangesUser('Name:\tnode\nCapBnd:\t00000000000030c0\nCapAmb:\t0000000000000000\n'));
  // With the drop-in of a config without programs: the network two only.
  t.false(boundingSetChangesUser('CapBnd:\t0000000000003000\n'));
  t.false(boundingSetChangesUser('CapBnd:\t0000000000003080\n'), 'CAP_SETUID alone is not enough');
  t.is(boundingSetChangesUser('Name:\tnode\n'), undefined);
});

test('a drop-in read back gives what it allows: the lists, and whether it took the change of user away', (t) => {
  t.deepEqual(parseSandboxDropIn(renderSandboxDropIn(planUnitSandbox(testConfig('primary')))),
    {ipAllow: 'localhost,192.0.2.11,192.0.2.12', bindAllow: 'udp:7411', canChangeUser: false});
  const withHook = testConfig('primary', {scriptUser: SCRIPT_USER, hooks: {onStateChange: '/usr/local/bin/notify', timeoutMs: 5000}});
  t.deepEqual(parseSandboxDropIn(renderSandboxDropIn(planUnitSandbox(withHook))),
    {ipAllow: 'localhost,192.0.2.11,192.0.2.12', bindAllow: 'udp:7411', canChangeUser: undefined});
});

test('the port allow-list is unsupported where systemd is older than SocketBindAllow= or has no BPF framework, and unknown is not "supported"', (t) => {
  const features = (framework: '+' | '-'): string => `+PAM +AUDIT +SECCOMP ${framework}BPF_FRAMEWORK -XKBCOMMON +UTMP default-hierarchy=unified`;
  t.is(socketBindUnsupported(`systemd 252 (252.38-1~deb12u1)\n${features('-')}\n`), 'systemd 252 is built without its BPF framework (-BPF_FRAMEWORK)');
  t.is(socketBindUnsupported(`systemd 257 (257.9-1~deb13u1)\n${features('+')}\n`), undefined);
  t.is(socketBindUnsupported(`systemd ${SOCKET_BIND_MIN_SYSTEMD} (${SOCKET_BIND_MIN_SYSTEMD})\n${features('+')}\n`), undefined);
  t.is(socketBindUnsupported(`systemd 247 (247.3-7+deb11u4)\n${features('+')}\n`), `systemd 247 predates SocketBindAllow= (${SOCKET_BIND_MIN_SYSTEMD})`);
  t.regex(socketBindUnsupported('systemctl: command not found') ?? '', /^`systemctl --version` did not say which systemd this is/);
  t.regex(socketBindUnsupported('systemd 256 (256)\n+PAM\n') ?? '', /did not say/, 'no word on the framework is not its presence');
});

const METRICS_ON = {
  enabled: true, listen: {address: '192.0.2.11', port: 9100},
  allowFrom: [{network: {address: '192.0.2.50', family: 4}, prefixLength: 32}, {network: {address: '198.51.100.0', family: 4}, prefixLength: 24}],
} as const satisfies Config['metrics'];

test('metrics on: the scrapers of allow_from are allowed in (a scrape is ingress), and the metrics port may be bound', (t) => {
  const sandbox = planUnitSandbox(testConfig('primary', {metrics: METRICS_ON}));
  t.deepEqual(sandbox.ipAllow?.slice(3), [
    {address: '192.0.2.50', keys: ['metrics.allow_from[0]']},
    {address: '198.51.100.0/24', keys: ['metrics.allow_from[1]']},
  ]);
  t.deepEqual(sandbox.bindAllow, ['udp:7411', 'tcp:9100']);
  const directives = renderSandboxDropIn(sandbox).split('\n').filter((line) => /^(IPAddressAllow|SocketBindAllow)=/.test(line));
  t.deepEqual(directives, ['IPAddressAllow=localhost 192.0.2.11 192.0.2.12 192.0.2.50 198.51.100.0/24', 'SocketBindAllow=udp:7411',
    'SocketBindAllow=tcp:9100']);
});

test('metrics off: allow_from and the port are not in the sandbox, whatever the section says', (t) => {
  const sandbox = planUnitSandbox(testConfig('primary', {metrics: {...METRICS_ON, enabled: false}}));
  t.is(ipAllowValue(sandbox), 'localhost,192.0.2.11,192.0.2.12');
  t.deepEqual(sandbox.bindAllow, ['udp:7411']);
});

test('metrics turned on under a drop-in written without them are refused: the scrapers and the port, by key', (t) => {
  const installed = runningFor(testConfig('primary'));
  t.deepEqual(sandboxProblems(testConfig('primary', {metrics: METRICS_ON}), installed), [
    'metrics.allow_from[0] 192.0.2.50: not in IPAddressAllow= (localhost 192.0.2.11 192.0.2.12)',
    'metrics.allow_from[1] 198.51.100.0/24: not in IPAddressAllow= (localhost 192.0.2.11 192.0.2.12)',
    'metrics.listen port 9100: not in SocketBindAllow= (udp:7411)',
  ]);
  const withMetrics = testConfig('primary', {metrics: METRICS_ON});
  t.deepEqual(sandboxProblems(withMetrics, runningFor(withMetrics)), [], 'the drop-in written for it fits');
});
