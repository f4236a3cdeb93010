// Part "scripts": the hook and the command health checks, the programs the configuration makes the agent run. A hook
// anyone could rewrite (world-writable, or in a directory anyone can write) must be refused before anything runs; a
// hook that calls setsid and sleeps must end with everything it started at its timeout; and what runs gets only
// the allow-listed environment (not a secret of the agent's), as script_user, without capabilities.

import {chmod, mkdir, readFile, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';
import {execa} from 'execa';
import {KILL_GRACE_MS} from '../agent/adapters/execa-runner.js';
import {SCRIPT_PATH} from '../agent/adapters/script-runner.js';
import {DEFAULT_SCRIPT_USER} from '../agent/config/script-user.js';
import {signalAgent, startAgent, type Lab} from '../cli/lab/lab.js';
import {isProcessAlive} from '../cli/lab/web.js';
import type {CampaignContext, CampaignPart, CaseResult} from './case.js';
import {badConfig, AGENT, CLI, firstLine, run} from './input.js';
import {settle, withCampaignLab} from './lab.js';

// The hook's timeout in the lab: short, so the case waits little; the tree must be gone within it plus the grace.
const HOOK_TIMEOUT_MS = 1000;
// The supervisor signals the tree at the timeout and SIGKILLs what is left KILL_GRACE_MS later; beyond a few seconds
// more something survived.
const GONE_WITHIN_MS = HOOK_TIMEOUT_MS + KILL_GRACE_MS + 5000;
// A secret the agent has in its environment and no hook may see.
const CANARY = {name: 'CAMPAIGN_SECRET_TOKEN', value: 'the-agent-s-secret'};
// What the hook may get (agent/adapters/script-runner.ts): PATH, the agent's LANG, and the hook's BATON_ variables.
const HOOK_ENVIRONMENT = ['PATH', 'LANG', 'BATON_OLD_STATE', 'BATON_NEW_STATE', 'BATON_REASON'];

/** The hook the lab's backup runs: records what it is and what it got, starts a setsid child, and sleeps. */
function hookScript(out: string): string {
  return [
    '#!/bin/sh',
    `out='${out}'`,
    'tr "\\000" "\\n" < /proc/$$/environ > "$out/$$.env"',
    'id -u > "$out/$$.uid"',
    'grep -E "^(CapInh|CapPrm|CapEff|CapAmb|NoNewPrivs):" /proc/$$/status > "$out/$$.status"',
    // pid, session (field 6 of /proc/PID/stat) and start (ms) of the hook, then pid and session of a child that left
    // its session.
    'echo $$ $(cut -d" " -f6 /proc/$$/stat) $(date +%s%3N) > "$out/$$.self"',
    'setsid sh -c \'echo $$ $(cut -d" " -f6 /proc/$$/stat) > "$1"; exec sleep 300\' sh "$out/$$.child" &',
    // Last: the case waits for this line, so everything above is written.
    'echo "$$ $1 $2" >> "$out/runs"',
    'sleep 300',
    '',
  ].join('\n');
}

interface HookRun {
  readonly pid: number;
  readonly session: number;
  readonly child: {readonly pid: number; readonly session: number};
  readonly env: readonly string[];
  readonly uid: string;
  readonly status: Record<string, string>;
  /** Wall-clock ms when the hook started, as it recorded. */
  readonly startedAt: number;
}

/**
 * Waits for a run of the hook for `transition` ("starting standby") recorded after the first `after` runs in
 * `runs`, and reads what it recorded.
 */
async function runFor(out: string, transition: string, after: number, timeoutMs: number): Promise<HookRun> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const lines = (await readFile(join(out, 'runs'), 'utf8').catch(() => '')).split('\n').filter((l) => l !== '');
    const line = lines.slice(after).find((l) => l.endsWith(` ${transition}`));
    const pid = line?.split(' ')[0] ?? '';
    const child = line === undefined ? '' : await readFile(join(out, `${pid}.child`), 'utf8').catch(() => '');
    if (child !== '') {
      const read = (suffix: string): Promise<string> => readFile(join(out, `${pid}.${suffix}`), 'utf8');
      const [childPid, childSession] = child.trim().split(' ').map(Number);
      const [, session, startedAt] = (await read('self')).trim().split(' ').map(Number);
      return {
        pid: Number(pid), session: session ?? 0, child: {pid: childPid ?? 0, session: childSession ?? 0},
        env: (await read('env')).split('\n').filter((l) => l !== ''), uid: (await read('uid')).trim(),
        status: Object.fromEntries((await read('status')).split('\n').filter((l) => l !== '').map((l) => l.split(/:\s*/) as [string, string])),
        startedAt: startedAt ?? Date.now(),
      };
    }
    if (Date.now() > deadline) throw new Error(`the hook recorded no run for ${transition} within ${timeoutMs} ms (runs: ${lines.join('; ') || 'none'})`);
    await sleep(100);
  }
}

async function treeCase(run: HookRun, log: string): Promise<CaseResult> {
  const deadline = run.startedAt + GONE_WITHIN_MS;
  while ((isProcessAlive(run.pid) || isProcessAlive(run.child.pid)) && Date.now() < deadline) await sleep(50);
  // When the case looked last: the tree was gone by then (it may have been gone well before the case first looked).
  const goneAfterMs = Date.now() - run.startedAt;
  const survivors = [run.pid, run.child.pid].filter((pid) => isProcessAlive(pid));
  const stopped = (await readFile(log, 'utf8').catch(() => '')).split('\n').find((l) => l.includes('was stopped with everything it started'));
  const problems: string[] = [];
  if (run.child.session === run.session) problems.push(`the child stayed in the hook's session ${run.session}: setsid did not detach it, the case proves nothing`);
  if (survivors.length > 0) problems.push(`still running ${(goneAfterMs / 1000).toFixed(1)} s after the hook started: pid ${survivors.join(', ')}`);
  if (stopped === undefined) problems.push('the agent did not log the hook\'s timeout');
  return {group: 'scripts', name: 'a hook that calls setsid and sleeps: its tree ends at the timeout', ok: problems.length === 0,
    figures: `hook pid ${run.pid} (session ${run.session}) and its setsid child ${run.child.pid} (session ${run.child.session}) gone ` +
      `${(goneAfterMs / 1000).toFixed(1)} s after the hook started, when the case looked (timeout ${HOOK_TIMEOUT_MS} ms, SIGKILL ${KILL_GRACE_MS} ms later); the agent logged the timeout`,
    ...(problems.length === 0 ? {} : {detail: problems.join('; ')})};
}

async function environmentCase(run: HookRun, agentPid: number): Promise<CaseResult> {
  const agentEnv = (await readFile(`/proc/${agentPid}/environ`, 'utf8').catch(() => '')).split('\0');
  const names = run.env.map((line) => line.split('=')[0] ?? '');
  const extra = names.filter((name) => !HOOK_ENVIRONMENT.includes(name));
  const problems: string[] = [];
  if (!agentEnv.includes(`${CANARY.name}=${CANARY.value}`)) problems.push(`the agent (pid ${agentPid}) was not given ${CANARY.name}: the case proves nothing`);
  if (extra.length > 0) problems.push(`the hook got ${extra.join(', ')}`);
  if (!run.env.includes(`PATH=${SCRIPT_PATH}`)) problems.push(`the hook's PATH is not ${SCRIPT_PATH}`);
  if (!names.includes('BATON_NEW_STATE')) problems.push('the hook did not get BATON_NEW_STATE');
  return {group: 'scripts', name: 'the hook\'s environment: the allow-list, no secret of the agent\'s', ok: problems.length === 0,
    figures: `the agent had ${agentEnv.filter((l) => l !== '').length} variables including ${CANARY.name}; the hook got ${names.length}: ${names.join(', ')}`,
    ...(problems.length === 0 ? {} : {detail: `${problems.join('; ')}\n  hook environment: ${run.env.join(' ')}`})};
}

async function userCase(run: HookRun): Promise<CaseResult> {
  const uid = String((await execa('id', ['-u', DEFAULT_SCRIPT_USER])).stdout).trim();
  const capabilities = ['CapInh', 'CapPrm', 'CapEff', 'CapAmb'];
  const held = capabilities.filter((cap) => !/^0+$/.test(run.status[cap] ?? 'missing'));
  const problems: string[] = [];
  if (run.uid !== uid) problems.push(`uid ${run.uid}, expected ${uid} (${DEFAULT_SCRIPT_USER})`);
  if (held.length > 0) problems.push(`capabilities held: ${held.map((cap) => `${cap} ${run.status[cap] ?? '?'}`).join(', ')}`);
  if (run.status['NoNewPrivs'] !== '1') problems.push(`NoNewPrivs ${run.status['NoNewPrivs'] ?? '?'}`);
  return {group: 'scripts', name: `the hook runs as script_user (${DEFAULT_SCRIPT_USER}) without capabilities`, ok: problems.length === 0,
    figures: `uid ${run.uid}; ${capabilities.map((cap) => `${cap} ${run.status[cap] ?? '?'}`).join(', ')}; NoNewPrivs ${run.status['NoNewPrivs'] ?? '?'}`,
    ...(problems.length === 0 ? {} : {detail: problems.join('; ')})};
}

/**
 * Configurations naming a program anyone could rewrite: each refused by check-config and by the agent at start,
 * naming the file or directory at fault, and never run.
 */
async function refusalCases(context: CampaignContext, lab: Lab): Promise<CaseResult[]> {
  const dir = join(context.dir, 'scripts-refused');
  const open = join(dir, 'open-dir');
  await mkdir(open, {recursive: true});
  await chmod(dir, 0o755);
  // World-writable without the sticky bit: anyone may replace a root-owned file in it.
  await chmod(open, 0o777);
  // Where the program would leave its mark: writable by script_user too, so a run could not go unseen.
  const marker = join(open, 'ran');
  const program = `#!/bin/sh\ntouch '${marker}'\n`;
  const writable = join(dir, 'writable-hook.sh');
  const inOpenDir = join(open, 'hook.sh');
  const writableCheck = join(dir, 'writable-check.sh');
  for (const [file, mode] of [[writable, 0o777], [inOpenDir, 0o755], [writableCheck, 0o757]] as const) {
    await writeFile(file, program);
    await chmod(file, mode);
  }
  const cases = [
    {name: 'a world-writable hook', yaml: `hooks:\n  on_state_change: ${writable}\n`, expect: /hooks\.on_state_change: .*writable-hook\.sh.* is a world-writable/},
    {name: 'a hook in a world-writable directory', yaml: `hooks:\n  on_state_change: ${inOpenDir}\n`, expect: /hooks\.on_state_change: .*open-dir.* is a world-writable directory/},
    {name: 'a world-writable command health check', yaml: `health:\n  checks:\n    - command: { path: ${writableCheck} }\n`, expect: /health\.checks.*writable-check\.sh.* is a world-writable/},
  ];
  const rows: CaseResult[] = [];
  for (const c of cases) {
    const file = await badConfig(lab, dir, c.name.replace(/[^a-z0-9]+/gi, '-'), /$/, `\n${c.yaml}`);
    const check = await run(process.execPath, [CLI, 'check-config', file]);
    const agent = await run(process.execPath, [AGENT, '--config', file]);
    const ran = await readFile(marker).then(() => true, () => false);
    const said = check.output.split('\n').find((l) => c.expect.test(l));
    const ok = check.exitCode === 1 && said !== undefined && agent.exitCode !== 0 && c.expect.test(agent.output) && !ran;
    rows.push({group: 'scripts', name: `refused: ${c.name}`, ok,
      figures: `check-config exit ${check.exitCode}, agent exit ${agent.exitCode}: ${firstLine((said ?? check.output).replaceAll(`${dir}/`, '')
        .replace(/^\s*- /, '').replace(/: someone other than root could .*$/, ''))}`,
      ...(ok ? {} : {detail: `check-config: ${check.output}\nagent: ${agent.output}${ran ? '\nthe program ran' : ''}`})});
  }
  return rows;
}

export const scriptsPart: CampaignPart = {
  name: 'scripts',
  about: 'hooks and command checks anyone could change, a hook that calls setsid and sleeps, its environment, user and capabilities',
  async run(context) {
    // The hook runs as script_user: it must reach its program, and write its records somewhere of its own.
    await chmod(context.dir, 0o755);
    const hookDir = join(context.dir, 'scripts-hook');
    const out = join(context.dir, 'scripts-out');
    await mkdir(hookDir, {recursive: true});
    await mkdir(out, {recursive: true});
    await chmod(hookDir, 0o755);
    await chmod(out, 0o777);
    const hook = join(hookDir, 'on-state-change.sh');
    await writeFile(hook, hookScript(out));
    await chmod(hook, 0o755);
    const hookConfig = `hooks:\n  on_state_change: ${hook}\n  timeout_ms: ${HOOK_TIMEOUT_MS}\n`;
    return await withCampaignLab(context, {hostConfig: {backup: hookConfig}}, async (lab) => {
      const rows = await refusalCases(context, lab);
      // The backup again, with a secret in its environment: the hook runs as it reaches standby.
      const backup = lab.hosts.backup;
      const runs = (await readFile(join(out, 'runs'), 'utf8').catch(() => '')).split('\n').filter((l) => l !== '').length;
      await signalAgent(backup, 'SIGTERM');
      await startAgent(backup, lab, undefined, {env: {...process.env, [CANARY.name]: CANARY.value}});
      const unsettled = await settle(lab);
      if (unsettled !== undefined) throw new Error(`the pair did not settle after the backup restarted: ${unsettled}`);
      // The old agent may have run the hook as it stopped: the new agent's first run is the one for its standby.
      const hookRun = await runFor(out, 'starting standby', runs, 20_000);
      rows.push(await treeCase(hookRun, backup.logFile), await environmentCase(hookRun, backup.pid), await userCase(hookRun));
      return rows;
    });
  },
};
