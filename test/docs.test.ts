// The docs stay true to the code: the state diagram in docs/states.md is the one in agent/state-machine.ts.

import {readFile} from 'node:fs/promises';
import test, {type ExecutionContext} from 'ava';
import {ANNOUNCE_REPEAT_MS} from '../agent/plans/announcer.js';
import {DEFAULT_BEACON_INTERVAL_MS, DEFAULT_BEACON_PORT, DEFAULT_BEACON_SECRET_FILE, DEFAULT_HEARD_WITHIN_INTERVALS} from '../agent/config/etcd-beacons.js';
import {STEP_DEADLINE_MS} from '../agent/plans/executor.js';
import {
  DEFAULT_CONFIRM_TIMEOUT_S, DEFAULT_DRAIN_TIMEOUT_S, DEFAULT_GRACEFUL_AFTER_S, DEFAULT_HOOK_TIMEOUT_MS, DEFAULT_MIN_REQUESTS,
  DEFAULT_METRICS_ENABLED, DEFAULT_METRICS_LISTEN, DEFAULT_REHEARSAL_ENABLED, DEFAULT_REPLAY_PROTECTION, PAIR_ONLY_KEYS, REPLAY_PROTECTIONS,
} from '../agent/config/schema.js';
import {METRICS} from '../agent/metrics.js';
import {
  DEFAULT_COORDINATION_MODE, DEFAULT_ETCD_PREFIX, DEFAULT_LEASE_TTL_S, DEFAULT_ON_ETCD_LOSS, DEFAULT_RENEW_MARGIN_DIVISOR, MAX_LEASE_TTL_S,
  MIN_LEASE_TTL_S, MIN_RENEW_MARGIN_MS,
} from '../agent/config/coordination.js';
import {REJECT_REASONS} from '../agent/peer/beacon-codec.js';
import {DEFAULT_SCRIPT_USER} from '../agent/config/script-user.js';
import {KILL_GRACE_MS} from '../agent/adapters/execa-runner.js';
import {DEFAULT_STATUSES, describeStatuses, EXCLUSIONS, HEALTH_CHECK_USER_AGENT} from '../agent/request-evidence.js';
import {parseAccessLogLine} from '../agent/access-log.js';
import {parse as parseYaml} from 'yaml';
import {VERSION} from '../agent/version.js';
import type {FigureRecord} from '../bench/record.js';
import {LOCAL_PLANS, SWITCHOVER_PLAN} from '../agent/plans/plans.js';
import {describeStep} from '../agent/plans/steps.js';
import {AGENT_STATE_NAMES, initialState, step, type AgentEvent, type MachineState} from '../agent/state-machine.js';
import type {Beacon} from '../agent/peer/beacon-codec.js';

const root = new URL('../../', import.meta.url);

test('the state diagram in docs/states.md is the one in agent/state-machine.ts', async (t) => {
  const source = await readFile(new URL('agent/state-machine.ts', root), 'utf8');
  const doc = await readFile(new URL('docs/states.md', root), 'utf8');
  const fromSource = source.split('\n').filter((line) => line.startsWith('//')).map((line) => line.replace(/^\/\/ ?/, ''));
  const start = fromSource.findIndex((line) => line.includes('probed: IP free, role primary'));
  const end = fromSource.findIndex((line, i) => i > start && line.startsWith('Decisions are made on observations'));
  const diagram = fromSource.slice(start, end).join('\n').trimEnd();
  const block = /```\n([\s\S]*?)\n```/.exec(doc.slice(doc.indexOf('## Transitions')))?.[1];
  t.true(diagram.length > 200, 'found the diagram in the source');
  t.is(block, diagram);
});

// Every event step() handles, as a record the compiler checks against the AgentEvent union: an event added to the
// machine without a place in the diagram fails here. plan-finished shows as the plans' "ok" and "failed" arrows.
const EVENTS_IN_DIAGRAM = {
  'probed': 'probed:', 'peer-seen': 'peer-seen:', 'peer-lost': 'peer-lost', 'plan-finished': 'plan) ──ok──►',
  'switch-begun': 'switch-begun', 'switch-ended': 'switch-ended', 'resume-requested': 'resume-requested',
  'peer-still-silent': 'peer-still-silent', 'health-changed': 'health-changed: failing', 'observed': 'observed:',
  'stop-requested': 'stop-requested',
} as const satisfies Record<AgentEvent['type'], string>;

test('the state diagram names every state and every event the state machine handles', async (t) => {
  const source = await readFile(new URL('agent/state-machine.ts', root), 'utf8');
  const diagram = source.split('\n').filter((line) => line.startsWith('//')).join('\n');
  for (const state of AGENT_STATE_NAMES) t.true(diagram.includes(state), `state ${state} is in the diagram`);
  for (const [event, shown] of Object.entries(EVENTS_IN_DIAGRAM)) t.true(diagram.includes(shown), `event ${event} is in the diagram as '${shown}'`);
  for (const plan of Object.keys(LOCAL_PLANS)) t.true(diagram.includes(`(${plan} plan`), `the ${plan} plan is in the diagram`);
  t.true(diagram.includes(`takeover plan: ${LOCAL_PLANS.takeover.join(', ')}`), 'the takeover plan shows its steps as plans.ts lists them');
});

test('docs/states.md describes every state, and its plan table lists the plans as plans.ts does', async (t) => {
  const doc = await readFile(new URL('docs/states.md', root), 'utf8');
  const states = [...doc.slice(0, doc.indexOf('## Transitions')).matchAll(/^\| `([a-z]+)` \|/gm)].map((m) => m[1]);
  t.deepEqual(states, [...AGENT_STATE_NAMES]);
  const plans = Object.fromEntries([...doc.matchAll(/^\| (acquire|takeover|release) \| ([^|]+) \|/gm)]
    .map((m) => [m[1], [...(m[2] ?? '').matchAll(/`([a-z-]+)`/g)].map((step) => step[1])]));
  t.deepEqual(plans, LOCAL_PLANS);
  t.true(doc.includes(`within ${STEP_DEADLINE_MS / 1000} seconds fails`), 'the step deadline is the executor\'s');
  t.true(doc.includes(`again ${ANNOUNCE_REPEAT_MS / 1000} s later`), 'the repeat of the announcement is the announcer\'s');
});

/** Splits a shell line into words the simple way docs use: spaces, single and double quotes, no expansions. */
function words(line: string): string[] {
  return [...line.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3] ?? '');
}

test('every baton command in a sh block of README.md and docs/ parses: no stale flags or commands', async (t) => {
  const {readdir} = await import('node:fs/promises');
  const {parseCommandLine} = await import('../cli/args.js');
  const docs = (await readdir(new URL('docs/', root))).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`);
  let checked = 0;
  for (const file of ['README.md', ...docs]) {
    const text = await readFile(new URL(file, root), 'utf8');
    for (const block of text.matchAll(/```sh\n([\s\S]*?)```/g)) {
      for (const raw of (block[1] ?? '').split('\n')) {
        const line = raw.replace(/\s+#.*$/, '').trim();
        const command = /^(?:sudo\s+)?(?:baton|node dist\/cli\/main\.js)\s+(.*)$/.exec(line);
        if (command === null) continue;
        checked += 1;
        t.notThrows(() => parseCommandLine(words(command[1] ?? '')), `${file}: ${line}`);
      }
    }
  }
  t.log(`${checked} commands checked`);
  t.true(checked >= 10);
});

test('every file the layout table of README.md names exists', async (t) => {
  const {access} = await import('node:fs/promises');
  const readme = await readFile(new URL('README.md', root), 'utf8');
  const table = readme.slice(readme.indexOf('## Layout'));
  const paths = [...table.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1] ?? '');
  t.true(paths.length >= 10, 'found the table');
  for (const path of paths) await t.notThrowsAsync(access(new URL(path, root)), path);
});

test('the switch step table in docs/operator-guide.md is SWITCHOVER_PLAN: its steps, in order, on their hosts, in the catalogue\'s words', async (t) => {
  const doc = await readFile(new URL('docs/operator-guide.md', root), 'utf8');
  const table = doc.split('<!-- switch-steps')[1]?.split('\n\n')[0] ?? '';
  const rows = [...table.matchAll(/^\| `([a-z-]+)` \| (primary|backup) \| (.+) \|$/gm)].map((m) => [m[1], m[2], m[3]]);
  t.deepEqual(rows, SWITCHOVER_PLAN.map((step) => [step.name, step.on === 'giver' ? 'primary' : 'backup', describeStep(step.name, 'address')]));
});

test('docs/configuration.md gives the drain\'s keys with the defaults the schema uses', async (t) => {
  const doc = await readFile(new URL('docs/configuration.md', root), 'utf8');
  const defaults = Object.fromEntries([...doc.matchAll(/^\| `(drain\.[a-z_]+)` \| ([^|]+) \|/gm)].map((m) => [m[1], m[2]?.trim()]));
  t.deepEqual(defaults, {
    'drain.enabled': '`true`',
    'drain.graceful_command': 'none',
    'drain.graceful_after_s': `\`${DEFAULT_GRACEFUL_AFTER_S}\``,
    'drain.timeout_s': `\`${DEFAULT_DRAIN_TIMEOUT_S}\``,
  });
});

test('docs/configuration.md gives the confirm keys with the defaults the schema uses, and every reason a line does not count', async (t) => {
  const doc = await readFile(new URL('docs/configuration.md', root), 'utf8');
  const defaults = Object.fromEntries([...doc.matchAll(/^\| `(confirm\.[a-z_]+)` \| ([^|]+) \|/gm)].map((m) => [m[1], m[2]?.trim()]));
  t.deepEqual(defaults, {
    'confirm.access_log': 'none',
    'confirm.min_requests': `\`${DEFAULT_MIN_REQUESTS}\``,
    'confirm.timeout_s': `\`${DEFAULT_CONFIRM_TIMEOUT_S}\``,
    'confirm.statuses': `\`[${describeStatuses(DEFAULT_STATUSES)}]\``,
    'confirm.log_format': '`combined`',
    'confirm.log_pattern': 'none',
  });
  const section = doc.slice(doc.indexOf('## The access log'), doc.indexOf('## Health checks'));
  t.true(section.includes(`\`${HEALTH_CHECK_USER_AGENT}\``));
  // One bullet or sentence per reason: loopback, own addresses, the service IP, health checks, statuses, elsewhere.
  t.is(EXCLUSIONS.length, 6, 'a new reason needs its line in "The access log"');
  for (const words of ['loopback', 'an address of either host', 'the service IP itself', 'health checks', 'confirm.statuses', 'a `local` group']) {
    t.true(section.includes(words), words);
  }
});

test('docs/configuration.md gives rehearsal.enabled with the default the schema uses', async (t) => {
  const doc = await readFile(new URL('docs/configuration.md', root), 'utf8');
  const defaults = Object.fromEntries([...doc.matchAll(/^\| `(rehearsal\.[a-z_]+)` \| ([^|]+) \|/gm)].map((m) => [m[1], m[2]?.trim()]));
  t.deepEqual(defaults, {'rehearsal.enabled': `\`${String(DEFAULT_REHEARSAL_ENABLED)}\``});
});

test('docs/configuration.md gives the metrics keys with the defaults the schema uses', async (t) => {
  const doc = await readFile(new URL('docs/configuration.md', root), 'utf8');
  const defaults = Object.fromEntries([...doc.matchAll(/^\| `(metrics\.[a-z_]+)` \| ([^|]+) \|/gm)].map((m) => [m[1], m[2]?.trim()]));
  t.deepEqual(defaults, {
    'metrics.enabled': `\`${String(DEFAULT_METRICS_ENABLED)}\``,
    'metrics.listen': `\`${DEFAULT_METRICS_LISTEN.address}:${DEFAULT_METRICS_LISTEN.port}\``,
    'metrics.allow_from': '`[]`',
  });
});

test('docs/configuration.md gives the coordination keys with the defaults and ranges the schema uses', async (t) => {
  const doc = await readFile(new URL('docs/configuration.md', root), 'utf8');
  const rows = [...doc.matchAll(/^\| `(coordination\.[a-z_]+)` \| ([^|]+) \| ([^|]+) \|/gm)];
  const defaults = Object.fromEntries(rows.map((m) => [m[1], m[2]?.trim()]));
  t.deepEqual(defaults, {
    'coordination.mode': `\`${DEFAULT_COORDINATION_MODE}\``,
    'coordination.endpoints': 'required with `etcd`',
    'coordination.host': 'required with `etcd`',
    'coordination.hosts': 'required with `etcd`',
    'coordination.tls': 'none',
    'coordination.prefix': `\`${DEFAULT_ETCD_PREFIX}\``,
    'coordination.lease_ttl_s': `\`${DEFAULT_LEASE_TTL_S}\``,
    'coordination.renew_margin_ms': `\`lease_ttl_s × 1000 / ${DEFAULT_RENEW_MARGIN_DIVISOR}\``,
    'coordination.on_etcd_loss': `\`${DEFAULT_ON_ETCD_LOSS}\``,
  });
  const what = Object.fromEntries(rows.map((m) => [m[1], m[3] ?? '']));
  t.true(what['coordination.lease_ttl_s']?.includes(`${MIN_LEASE_TTL_S}–${MAX_LEASE_TTL_S} s`), 'the TTL\'s range');
  t.true(what['coordination.renew_margin_ms']?.includes(`${MIN_RENEW_MARGIN_MS} ms to half the TTL`), 'the margin\'s range');
  t.true(doc.includes(`lease_ttl_s: ${DEFAULT_LEASE_TTL_S}            # renewals every ${(DEFAULT_LEASE_TTL_S / 3).toFixed(1)} s`), 'the example\'s renewal interval');
});

test('docs/configuration.md gives the beacon keys of keep-while-peers-agree with the defaults etcd-beacons.ts uses', async (t) => {
  const doc = await readFile(new URL('docs/configuration.md', root), 'utf8');
  const rows = [...doc.matchAll(/^\| `(coordination\.beacons\.[a-z_]+)` \| ([^|]+) \|/gm)];
  t.deepEqual(Object.fromEntries(rows.map((m) => [m[1], m[2]?.trim()])), {
    'coordination.beacons.addresses': 'required with `keep-while-peers-agree`',
    'coordination.beacons.port': `\`${DEFAULT_BEACON_PORT}\``,
    'coordination.beacons.secret_file': `\`${DEFAULT_BEACON_SECRET_FILE}\``,
    'coordination.beacons.interval_ms': `\`${DEFAULT_BEACON_INTERVAL_MS}\``,
    'coordination.beacons.heard_within_ms': `\`interval_ms × ${DEFAULT_HEARD_WITHIN_INTERVALS}\``,
  });
});

test('docs/configuration.md lists the pair\'s keys that etcd mode refuses as the schema refuses them', async (t) => {
  const doc = await readFile(new URL('docs/configuration.md', root), 'utf8');
  const listed = /with `etcd` a pair's keys are refused instead \(([^;)]*)/.exec(doc)?.[1] ?? '';
  t.deepEqual([...listed.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]), [...PAIR_ONLY_KEYS]);
});

test('the metric list in docs/operator-guide.md is agent/metrics.ts\'s: every name, in order, with its type', async (t) => {
  const doc = await readFile(new URL('docs/operator-guide.md', root), 'utf8');
  const table = doc.split('<!-- metrics-list')[1]?.split('\n\n')[0] ?? '';
  const rows = [...table.matchAll(/^\| `([a-z0-9_]+)(?:\{[a-z,]+\})?` \| ([a-z]+) \|/gm)].map((m) => [m[1], m[2]]);
  t.deepEqual(rows, Object.entries(METRICS).map(([name, {type}]) => [name, type]));
});

test('the log_pattern example in docs/configuration.md reads a line of the nginx log_format beside it', async (t) => {
  const doc = await readFile(new URL('docs/configuration.md', root), 'utf8');
  const yamlBlock = [...doc.matchAll(/```yaml\n([^`]*?log_pattern[^`]*?)```/g)][0]?.[1] ?? '';
  const pattern = (parseYaml(yamlBlock) as {confirm?: {log_pattern?: string}}).confirm?.log_pattern ?? '';
  // What `log_format baton '$server_addr $remote_addr [$time_local] "$request" $status "$http_user_agent"'` writes.
  const line = '192.0.2.100 192.0.2.20 [21/Nov/2026:13:45:02 +0000] "GET /a HTTP/1.1" 200 "curl/8.1"';
  const entry = parseAccessLogLine(line, {kind: 'pattern', pattern: new RegExp(pattern)});
  t.is(entry?.local, '192.0.2.100');
  t.is(entry?.client, '192.0.2.20');
  t.is(entry?.userAgent, 'curl/8.1');
  t.true(doc.includes(`log_format baton '$server_addr $remote_addr [$time_local] "$request" $status "$http_user_agent"';`));
});

test('docs/configuration.md gives the hook keys and script_user with the defaults the schema uses', async (t) => {
  const doc = await readFile(new URL('docs/configuration.md', root), 'utf8');
  const defaults = Object.fromEntries([...doc.matchAll(/^\| `(hooks\.[a-z_]+|script_user)` \| ([^|]+) \|/gm)].map((m) => [m[1], m[2]?.trim()]));
  t.deepEqual(defaults, {
    'hooks.on_state_change': 'none',
    'hooks.timeout_ms': `\`${DEFAULT_HOOK_TIMEOUT_MS}\``,
    'script_user': `\`${DEFAULT_SCRIPT_USER}\``,
  });
});

test('the docs give the SIGKILL grace after a hook\'s or check\'s timeout that the runners use', async (t) => {
  const said = `SIGTERM, then SIGKILL ${KILL_GRACE_MS / 1000} s later`;
  for (const file of ['docs/configuration.md', 'docs/security.md']) {
    const doc = await readFile(new URL(file, root), 'utf8');
    t.true(doc.includes(said), `${file} says "${said}"`);
    t.false(/SIGKILL \d+(\.\d+)? s later/.test(doc.replaceAll(said, '')), `${file} gives no other grace`);
  }
});

test('docs/campaign.md lists every part of the campaign, in the order it runs, in its table and its --only line', async (t) => {
  const {PARTS} = await import('../campaign/parts.js');
  const doc = await readFile(new URL('docs/campaign.md', root), 'utf8');
  const table = doc.slice(doc.indexOf('## The parts'), doc.indexOf('## Latest figures'));
  t.deepEqual([...table.matchAll(/^\| `([a-z]+)` \|/gm)].map((m) => m[1]), PARTS.map((part) => part.name));
  const only = /--only flood,forged +# some parts: ([a-z, ]+)$/m.exec(doc)?.[1]?.split(', ');
  t.deepEqual(only, PARTS.map((part) => part.name));
});

test('the allow-list drop-in in docs/security.md is the one install writes for the config of docs/install.md', async (t) => {
  const {planUnitSandbox} = await import('../agent/config/unit-sandbox.js');
  const {renderSandboxDropIn} = await import('../cli/install/texts.js');
  const {testConfig} = await import('./fakes/test-config.js');
  const doc = await readFile(new URL('docs/security.md', root), 'utf8');
  const section = doc.slice(doc.indexOf('### Address and port allow-lists'));
  const block = /```ini\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
  // install.md's first host: --listen 192.0.2.11 --peer 192.0.2.12, no hook, no check.
  const written = renderSandboxDropIn(planUnitSandbox(testConfig('primary')));
  t.deepEqual(block.trimEnd().split('\n'), written.split('\n').filter((line) => line !== '' && !line.startsWith('#')));
});

test('docs/configuration.md gives heartbeat.replay_protection with the schema\'s default and every value it takes', async (t) => {
  const doc = await readFile(new URL('docs/configuration.md', root), 'utf8');
  const row = /^\| `heartbeat\.replay_protection` \| ([^|]+) \| (.+) \|$/m.exec(doc);
  t.is(row?.[1]?.trim(), `\`${DEFAULT_REPLAY_PROTECTION}\``);
  for (const mode of REPLAY_PROTECTIONS) t.true(row?.[2]?.includes(`\`${mode}\``), `the row explains ${mode}`);
});

test('docs/protocol.md\'s table of rejections names every reason the agent counts, and no other', async (t) => {
  const doc = await readFile(new URL('docs/protocol.md', root), 'utf8');
  const table = doc.slice(doc.indexOf('## What is rejected'), doc.indexOf('Replay protection has two parts'));
  const named = [...table.matchAll(/^\| ((?:`[a-z-]+`(?:, )?)+) \|/gm)].flatMap((m) => [...(m[1] ?? '').matchAll(/`([a-z-]+)`/g)].map((r) => r[1]));
  t.deepEqual([...named].sort(), [...REJECT_REASONS].sort());
});

test('docs/protocol.md names every peer operation as peer-protocol.ts lists them, and the rehearsal request\'s deadline', async (t) => {
  const {PEER_OPS} = await import('../agent/peer/peer-protocol.js');
  const {REHEARSAL_ASK_DEADLINE_MS} = await import('../agent/rehearsal.js');
  const doc = await readFile(new URL('docs/protocol.md', root), 'utf8');
  const list = /^`op` \(([^)]*)\)/m.exec(doc)?.[1] ?? '';
  t.deepEqual([...list.matchAll(/`([a-z-]+)`/g)].map((m) => m[1]), [...PEER_OPS]);
  t.true(doc.includes(`gives up after ${REHEARSAL_ASK_DEADLINE_MS / 1000} s`), 'protocol.md: the asking agent\'s deadline');
  const rehearsal = await readFile(new URL('docs/rehearsal.md', root), 'utf8');
  t.true(rehearsal.includes(`after ${REHEARSAL_ASK_DEADLINE_MS / 1000} s the`), 'rehearsal.md: the same deadline');
});

test('protocol.md, configuration.md and troubleshooting.md give the number of addresses a host tells its peer as host-addresses.ts has it', async (t) => {
  const {MAX_HOST_ADDRESSES} = await import('../agent/peer/host-addresses.js');
  const protocol = await readFile(new URL('docs/protocol.md', root), 'utf8');
  t.true(protocol.includes(`canonical, at most ${MAX_HOST_ADDRESSES}, without`), 'protocol.md: begin\'s addresses');
  t.true(protocol.includes(`is not at most ${MAX_HOST_ADDRESSES} IP addresses`), 'protocol.md: the refusal');
  const configuration = await readFile(new URL('docs/configuration.md', root), 'utf8');
  t.true(configuration.includes(`(up to ${MAX_HOST_ADDRESSES}, without`), 'configuration.md: the access log\'s exclusions');
  const troubleshooting = await readFile(new URL('docs/troubleshooting.md', root), 'utf8');
  t.true(troubleshooting.includes(`more than ${MAX_HOST_ADDRESSES} addresses tells the first ${MAX_HOST_ADDRESSES}`), 'troubleshooting.md');
});

test('docs/troubleshooting.md gives the wait for a tentative IPv6 listen address as the transport has it', async (t) => {
  const {TENTATIVE_WAIT_MS} = await import('../agent/adapters/udp-transport.js');
  const doc = await readFile(new URL('docs/troubleshooting.md', root), 'utf8');
  t.true(doc.includes(`still not usable after ${TENTATIVE_WAIT_MS} ms\``));
});

test('docs/rehearsal.md shows the refusal of rehearse --with-failure as the command words it', async (t) => {
  const {requireRehearsalAids} = await import('../cli/drill/agent-target.js');
  const doc = await readFile(new URL('docs/rehearsal.md', root), 'utf8');
  const error = t.throws(() => requireRehearsalAids({
    self: {host: {role: 'primary', host: 'web-1'}, enabled: true}, peer: {host: {role: 'backup', host: 'web-2'}, enabled: false},
  }));
  t.true(doc.includes(`\nbaton: ${error?.message ?? 'no refusal'}\n`));
});

test('docs/rehearsal.md\'s table of the lab\'s addresses is the topology plan\'s, in both families', async (t) => {
  const {LAB_ADDRESSES, LAB_ADDRESSES6, labServiceCidr, MANAGEMENT_LAN, SERVICE_LAN} = await import('../cli/lab/topology-plan.js');
  const doc = await readFile(new URL('docs/rehearsal.md', root), 'utf8');
  const row = (label: string): string[] => {
    const line = doc.split('\n').find((l) => l.startsWith(`| ${label} |`));
    return (line ?? '').split('|').slice(2, -1).map((cell) => cell.trim());
  };
  const net = (lan: {network: string; prefixLength: number}): string => `${lan.network}/${lan.prefixLength}`;
  t.deepEqual(row('networks'), [`${net(SERVICE_LAN)}, ${net(SERVICE_LAN.ipv6)}`, `${net(MANAGEMENT_LAN)}, ${net(MANAGEMENT_LAN.ipv6)}`]);
  for (const host of ['primary', 'backup'] as const) {
    t.deepEqual(row(host), [`${LAB_ADDRESSES[host].svc}, ${LAB_ADDRESSES6[host].svc}`, `${LAB_ADDRESSES[host].mgmt}, ${LAB_ADDRESSES6[host].mgmt}`], host);
  }
  t.deepEqual(row('client'), [`${LAB_ADDRESSES.client.svc}, ${LAB_ADDRESSES6.client.svc}`, '']);
  t.deepEqual(row('service address'), [`${labServiceCidr(4)}, or with \`--ipv6\` ${labServiceCidr(6)}, or with \`--dual-stack\` both`, '']);
});

// What each row of the runbook's "while you work" table does to the released host, as events of the state machine.
// web-b, the peer, is active and holds the IP throughout.
const ACTIVE_PEER: Beacon = {
  pair: 'web', node: 'backup', host: 'web-b', boot: 'b1', seq: 1, sentAt: 0, state: 'active', epoch: 2,
  holdsIp: true, health: 'ok', switchId: '', ack: undefined,
};
const RUNBOOK_ROWS: Record<string, {readonly from: 'released' | 'restart'; readonly events: readonly AgentEvent[]}> = {
  'nothing special': {from: 'released', events: [{type: 'peer-seen', beacon: ACTIVE_PEER}, {type: 'observed', holdsIp: false, interfaceRunning: true}]},
  'reboot, or restart `baton-agent`': {from: 'restart', events: [
    {type: 'peer-seen', beacon: ACTIVE_PEER}, {type: 'probed', holdsIp: false, addressInUse: true}]},
  'stop the web server while an `http:` health check is configured': {from: 'released', events: [
    {type: 'health-changed', health: 'failing', reason: 'http check: connection refused'}, {type: 'peer-seen', beacon: ACTIVE_PEER}]},
  '`baton resume` (step 8, once it is ready)': {from: 'released', events: [{type: 'resume-requested'}]},
};

test('the runbook\'s table of what happens to the released host is what the state machine does', async (t) => {
  const doc = await readFile(new URL('docs/runbook-upgrade.md', root), 'utf8');
  const table = doc.slice(doc.indexOf('| you do | the agent on web-a is then | why |'));
  const rows = [...table.slice(0, table.indexOf('\n\n')).matchAll(/^\| (.+?) \| `([a-z]+)` \| .+ \|$/gm)];
  t.deepEqual(rows.map((r) => r[1]), Object.keys(RUNBOOK_ROWS));
  const released = step(initialState('primary', 1, true), {type: 'probed', holdsIp: false, addressInUse: true}).state;
  t.is(released.name, 'released');
  for (const [, action, shown] of rows) {
    const row = RUNBOOK_ROWS[action ?? ''];
    if (row === undefined) continue;
    let state: MachineState = row.from === 'released' ? released : initialState('primary', 1, true);
    for (const event of row.events) state = step(state, event).state;
    t.is(state.name as string | undefined, shown, action);
  }
});

test('docs/security.md gives the port allow-list\'s first systemd, the peer\'s MAC budget and the filter\'s exceptions as the code has them', async (t) => {
  const {PRIVILEGED_EXCEPTIONS, SOCKET_BIND_MIN_SYSTEMD, planUnitSandbox} = await import('../agent/config/unit-sandbox.js');
  const {MAX_VERIFIED_PER_S} = await import('../agent/peer/peer-monitor.js');
  const {renderSandboxDropIn} = await import('../cli/install/texts.js');
  const {testConfig} = await import('./fakes/test-config.js');
  const doc = await readFile(new URL('docs/security.md', root), 'utf8');
  const section = doc.slice(doc.indexOf('#### The port allow-list needs'), doc.indexOf('The agent checks its config against the drop-in'));
  t.true(section.includes(`exist since systemd ${SOCKET_BIND_MIN_SYSTEMD} `), 'the version SocketBindAllow= came with');
  t.true(section.includes(`older than ${SOCKET_BIND_MIN_SYSTEMD},`));
  t.true(section.includes(`at most ${MAX_VERIFIED_PER_S} datagrams a second`), 'the peer monitor\'s budget');
  const written = renderSandboxDropIn(planUnitSandbox(testConfig('primary')));
  t.true(written.includes(`systemd ${SOCKET_BIND_MIN_SYSTEMD} and later`), 'the drop-in\'s comment names the same version');
  const exceptions = PRIVILEGED_EXCEPTIONS.join(' ');
  t.true(doc.includes(`plus \`${exceptions}\``), 'the unit\'s exceptions, in the sandbox table');
  t.true(doc.includes(`\`SystemCallFilter=~${exceptions}\``), 'the drop-in\'s removal of them');
});

test('docs/states.md gives the exit of `baton status` for every state, as STATE_LEVEL has it, in the state machine\'s order', async (t) => {
  const {STATE_LEVEL} = await import('../cli/status-check.js');
  const {STATUS_EXIT} = await import('../cli/exit-codes.js');
  const doc = await readFile(new URL('docs/states.md', root), 'utf8');
  const table = doc.split('<!-- status-exit')[1]?.split('\n\n')[0] ?? '';
  const rows = [...table.matchAll(/^\| `([a-z]+)` \| (\d) (ok|warning|critical|unknown) \|/gm)].map((m) => [m[1], Number(m[2]), m[3]]);
  t.deepEqual(rows, AGENT_STATE_NAMES.map((state) => [state, STATUS_EXIT[STATE_LEVEL[state]], STATE_LEVEL[state]]));
});

test('docs/operator-guide.md gives every problem `baton status` judges with its level, and the JSON schema version', async (t) => {
  const {PROBLEM_LEVEL} = await import('../cli/status-check.js');
  const {STATUS_SCHEMA_VERSION} = await import('../cli/commands/status.js');
  const {STATUS_EXIT} = await import('../cli/exit-codes.js');
  const doc = await readFile(new URL('docs/operator-guide.md', root), 'utf8');
  const table = doc.split('<!-- status-problems')[1]?.split('\n\n')[0] ?? '';
  const rows = Object.fromEntries([...table.matchAll(/^\| `([a-z-]+)` \| (ok|warning|critical|unknown) \|/gm)].map((m) => [m[1], m[2]]));
  t.deepEqual(rows, PROBLEM_LEVEL);
  const exits = [...doc.matchAll(/^\| (\d) \| (OK|WARNING|CRITICAL|UNKNOWN) \|/gm)].map((m) => [m[2]?.toLowerCase(), Number(m[1])]);
  t.deepEqual(Object.fromEntries(exits), STATUS_EXIT);
  t.regex(doc, new RegExp(`^\\| \`schemaVersion\` \\| \`${STATUS_SCHEMA_VERSION}\`: `, 'm'));
});

test('docs/troubleshooting.md\'s table of host problems is HOST_PROBLEMS: every kind, its severity, and whether the agent starts', async (t) => {
  const {HOST_PROBLEMS} = await import('../agent/host-check.js');
  const doc = await readFile(new URL('docs/troubleshooting.md', root), 'utf8');
  const table = doc.split('<!-- host-problems')[1]?.split('\n\n')[0] ?? '';
  const rows = [...table.matchAll(/^\| `([a-z0-9-]+)` \| (error|warning) \| ([^|]+) \|/gm)]
    .map((m) => [m[1], m[2], (m[3] ?? '').trim() === 'does not start']);
  t.deepEqual(rows.toSorted(), Object.entries(HOST_PROBLEMS).map(([kind, about]) => [kind, about.severity, about.blocksStart]).toSorted());
});

// One figure per fact: where the docs quote a bench figure, it is the one docs/bench-figures.json records (written
// by `npm run bench -- --record docs/bench-figures.json`, bench/record.ts), shown to the digits the doc gives.
const loadRecord = async (): Promise<FigureRecord> => JSON.parse(await readFile(new URL('docs/bench-figures.json', root), 'utf8')) as FigureRecord;

/** The recorded value of `id` (ID/s: a time in ms shown in seconds), rounded as `shown` is, next to what the doc shows. */
function sameFigure(t: ExecutionContext, record: FigureRecord, id: string, shown: string, where: string): void {
  const [key = '', unit] = id.split('/');
  const figure = record.figures[key];
  if (figure === undefined) {
    t.fail(`${where}: ${key} is not in docs/bench-figures.json`);
    return;
  }
  const decimals = shown.split('.')[1]?.length ?? 0;
  const value = unit === 's' ? figure.value / 1000 : figure.value;
  t.is(Number(shown.replace(/,/g, '')).toFixed(decimals), value.toFixed(decimals), `${where}: ${id}`);
}

/** Each capture of `pattern` in `file` against the ids in order; the pattern must match exactly once. */
async function quotes(t: ExecutionContext, file: string, pattern: RegExp, ids: readonly string[]): Promise<void> {
  const record = await loadRecord();
  const text = (await readFile(new URL(file, root), 'utf8')).replace(/\s*\n\s*/g, ' ');
  const found = [...text.matchAll(new RegExp(pattern.source, 'g'))];
  t.is(found.length, 1, `${file}: ${pattern.source} found ${found.length} times`);
  const captured = found[0]?.slice(1) ?? [];
  t.is(captured.length, ids.length, `${file}: ${pattern.source} captures one figure per id`);
  ids.forEach((id, i) => sameFigure(t, record, id, captured[i] ?? 'NaN', file));
}

const CLIENT_CLASSES_SHOWN = ['fresh', 'keepAlive', 'downloads', 'uploads'] as const;
const README_COLUMNS = [['idle', 'baton'], ['idle', 'hand'], ['loaded', 'baton'], ['loaded', 'hand']] as const;
/** The README's bench table: each row's figures, per column, as record ids. */
const README_ROWS: Readonly<Record<string, (prefix: string) => string[]>> = {
  'moves': (p) => [`${p}.moves`],
  'failed: new connections / keep-alive / downloads / uploads': (p) => CLIENT_CLASSES_SHOWN.map((c) => `${p}.failed.${c}`),
  'longest new-connection gap, median / max': (p) => [`${p}.gap.fresh.median`, `${p}.gap.fresh.max`],
  'nobody holds the IP (kernel events), median / max': (p) => [`${p}.unowned.median`, `${p}.unowned.max`],
};

test('the README\'s bench table gives the recorded figures, every row and column', async (t) => {
  const readme = await readFile(new URL('README.md', root), 'utf8');
  const record = await loadRecord();
  const rows = readme.split('\n').filter((line) => line.startsWith('| ') && Object.keys(README_ROWS).some((label) => line.startsWith(`| ${label} |`)));
  t.is(rows.length, Object.keys(README_ROWS).length, 'every row is there');
  for (const row of rows) {
    const [label = '', ...cells] = row.split('|').slice(1, -1).map((cell) => cell.trim());
    README_COLUMNS.forEach(([condition, mover], column) => {
      const ids = README_ROWS[label]?.(`clients.${condition}.${mover}`) ?? [];
      const shown = (cells[column] ?? '').match(/\d[\d,]*(?:\.\d+)?/g) ?? [];
      t.is(shown.length, ids.length, `${label}, ${condition} ${mover}: ${cells[column]}`);
      ids.forEach((id, i) => sameFigure(t, record, id, shown[i] ?? 'NaN', `README ${label}`));
    });
  }
});

test('the failover and planned-gap figures in the README, comparison.md and protocol.md are the recorded ones, IPv6\'s and dual stack\'s too', async (t) => {
  const failover = ['failover.defaults.gap.median', 'failover.keepalived-equal.gap.median', 'failover.tuned.gap.median'];
  await quotes(t, 'README.md', /Unplanned failover \(link cut, \d+ each\): (\d+) ms median with the default timers, (\d+) ms with beacons every 100 ms and dead after 350 ms \(keepalived at 0\.1 s adverts: \d+ ms\), (\d+) ms at 50 \/ 250 ms/, failover);
  await quotes(t, 'docs/comparison.md', /\*\*(\d+) ms\*\* median with the defaults \(beacon 200 ms, dead after 1000 ms\); \*\*(\d+) ms\*\* at keepalived's detection \(100 \/ 350 ms\); \*\*(\d+) ms\*\* with 50 \/ 250 ms/, failover);
  await quotes(t, 'docs/protocol.md', /`clock` (\d+) ms median \((\d+)–(\d+)\), `acknowledged` (\d+) ms median \((\d+)–(\d+)\); with beacons every 50 ms and dead after 250 ms, `clock` (\d+) ms \((\d+)–(\d+)\), `acknowledged` (\d+) ms \((\d+)–(\d+)\)/,
    ['defaults', 'acknowledged', 'tuned', 'acknowledged-tuned'].flatMap((tag) => ['median', 'min', 'max'].map((q) => `failover.${tag}.gap.${q}`)));
  await quotes(t, 'docs/comparison.md', /median longest gap \*\*(\d+) ms\*\* with a probe every 50 ms, \*\*(\d+) ms\*\* with one every 10 ms, (\d+) failed probes in (\d+) switches each/,
    ['switchover.probe-50ms.gap.median', 'switchover.probe-10ms.gap.median', 'switchover.probe-50ms.failed.total', 'switchover.probe-50ms.switches']);
  await quotes(t, 'docs/comparison.md', /uploads; (\d+) moves\): (\d+) failed requests, (\d+) ms median gap, nobody holds the IP for ([\d.]+) ms median \(([\d.]+) ms max\); the whole switch with its drain ([\d.]+) s median/,
    ['clients.idle.baton.moves', 'clients.idle.baton.failed.fresh', 'clients.idle.baton.gap.fresh.median', 'clients.idle.baton.unowned.median',
      'clients.idle.baton.unowned.max', 'clients.idle.baton.total.median/s']);
  await quotes(t, 'docs/comparison.md', /\| memory and CPU at rest, \*measured\* \| (\d+) MB RSS, ([\d.]+) % of a core \|/,
    ['rest.primary.rss-mb', 'rest.primary.cpu-percent']);
  await quotes(t, 'docs/comparison.md', /\(13 MB against baton's (\d+) MB\)/, ['rest.primary.rss-mb']);
  await quotes(t, 'README.md', /A whole switch with its drain takes ([\d.]+) s median at idle \(the drain ([\d.]+) s of it\)/,
    ['clients.idle.baton.total.median/s', 'clients.idle.baton.drain.median/s']);
  await quotes(t, 'docs/comparison.md', /planned gap \*\*(\d+) ms\*\* median with a probe every 50 ms, \*\*(\d+) ms\*\* with one every 10 ms; link cut \*\*(\d+) ms\*\* with the defaults, \*\*(\d+) ms\*\* at 100 \/ 350 ms, \*\*(\d+) ms\*\* at 50 \/ 250 ms/,
    ['ipv6.switchover.probe-50ms.gap.median', 'ipv6.switchover.probe-10ms.gap.median', 'ipv6.failover.defaults.gap.median',
      'ipv6.failover.keepalived-equal.gap.median', 'ipv6.failover.tuned.gap.median']);
  await quotes(t, 'docs/comparison.md', /a run's gap the longer of the two\): planned gap \*\*(\d+) ms\*\* median with a probe every 50 ms; link cut \*\*(\d+) ms\*\* with the defaults, \*\*(\d+) ms\*\* at 50 \/ 250 ms/,
    ['dual.switchover.probe-50ms.gap.median', 'dual.failover.defaults.gap.median', 'dual.failover.tuned.gap.median']);
});

test('the etcd bench figures in configuration.md are the recorded ones, each beside the pair figure it is compared with', async (t) => {
  await quotes(t, 'docs/configuration.md', /longest client gap was \*\*(\d+) ms\*\* median with a probe every 50 ms \(a pair: (\d+) ms\) and \*\*(\d+) ms\*\* with one every 10 ms \(a pair: (\d+) ms\), with (\d+) and (\d+) failed probes in (\d+) switches each \(a pair: (\d+) in (\d+)\)/,
    ['etcd.switchover.probe-50ms.gap.median', 'switchover.probe-50ms.gap.median', 'etcd.switchover.probe-10ms.gap.median', 'switchover.probe-10ms.gap.median',
      'etcd.switchover.probe-50ms.failed.total', 'etcd.switchover.probe-10ms.failed.total', 'etcd.switchover.probe-50ms.switches',
      'switchover.probe-50ms.failed.total', 'switchover.probe-50ms.switches']);
  await quotes(t, 'docs/configuration.md', /The whole switch took (\d+) ms median \(a pair's, with its drain, ([\d.]+) s\)\. The holder's agent killed and its link cut: another host answered the client \*\*([\d.]+) s\*\* median after the kill \(([\d.]+)–([\d.]+) s over (\d+) runs\), against (\d+) ms for a pair's link cut with the default timers/,
    ['etcd.switchover.probe-50ms.total.median', 'switchover.probe-50ms.total.median/s', 'etcd.failover.kill.served.median/s', 'etcd.failover.kill.served.min/s',
      'etcd.failover.kill.served.max/s', 'etcd.failover.kill.runs', 'failover.defaults.gap.median']);
});

test('every run of docs/bench-figures.json says how it was made, and every figure names one of them', async (t) => {
  const record = await loadRecord();
  for (const [id, run] of Object.entries(record.runs)) {
    t.regex(run.date, /^\d{4}-\d{2}-\d{2}$/, id);
    t.regex(run.command, /^npm run bench -- /, id);
    t.true(run.commit !== '' && run.machine !== '', id);
  }
  for (const [id, figure] of Object.entries(record.figures)) t.true(figure.run in record.runs, `${id} names run ${figure.run}`);
});

test('docs/comparison.md gives baton\'s version as agent/version.ts has it', async (t) => {
  const comparison = await readFile(new URL('docs/comparison.md', root), 'utf8');
  t.true(comparison.includes(`| maturity | new (${VERSION}) |`), 'the maturity row names this version');
});
