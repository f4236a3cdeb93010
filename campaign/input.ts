// Part "input": bad input everywhere an operator or a local user can reach. Config values that try shell
// injection, a hook whose path has spaces, quotes and a $(…), a control-socket client that is not root,
// oversized and malformed control requests (and many at once), and CLI flags out of range. Each must be a clear,
// specific error that changes nothing: the agent keeps running, the IP stays where it was.

import {chmod, mkdir, readFile, stat, writeFile} from 'node:fs/promises';
import {createConnection, type Socket} from 'node:net';
import {join} from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';
import {fileURLToPath} from 'node:url';
import {execa} from 'execa';
import {CONTROL_PROTOCOL, type StatusReport} from '../agent/control-protocol.js';
import {DEFAULT_CONTROL_LIMITS} from '../agent/control-server.js';
import {EXIT_USAGE, STATUS_EXIT} from '../cli/exit-codes.js';
import type {Lab, LabHost} from '../cli/lab/lab.js';
import {describeHoldings, holdingsOf, soleHolder} from '../cli/lab/observe.js';
import {isProcessAlive} from '../cli/lab/web.js';
import type {CampaignContext, CampaignPart, CaseResult} from './case.js';
import {statusOf} from './forge.js';
import {withCampaignLab} from './lab.js';

export const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));
export const AGENT = fileURLToPath(new URL('../agent/main.js', import.meta.url));

export interface Run {
  readonly exitCode: number | undefined;
  readonly output: string;
}

export async function run(file: string, args: readonly string[], options: {uid?: number} = {}): Promise<Run> {
  const [command, argv] = options.uid === undefined ? [file, args]
    : ['setpriv', [`--reuid=${options.uid}`, `--regid=${options.uid}`, '--clear-groups', file, ...args]];
  const result = await execa(command, argv, {reject: false, timeout: 30_000, all: true});
  return {exitCode: result.exitCode, output: String(result.all ?? '')};
}

/** The first line of what a command printed, for the table. */
export function firstLine(text: string): string {
  const line = text.split('\n').find((l) => l.trim() !== '') ?? '';
  return line.length > 150 ? `${line.slice(0, 147)}...` : line;
}

/** Sends raw bytes to the control socket and returns what came back before it closed (or `timeoutMs` passed). */
async function rawControl(socket: string, payload: Buffer | string, timeoutMs = 5000): Promise<string> {
  return await new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const connection = createConnection(socket);
    const done = (): void => {
      clearTimeout(timer);
      connection.destroy();
      resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const timer = setTimeout(done, timeoutMs);
    connection.on('data', (chunk) => chunks.push(chunk));
    connection.on('close', done);
    connection.on('error', done);
    connection.on('connect', () => connection.write(payload));
  });
}

/** The lab's primary config with one line replaced: a bad value where an operator might type it. */
export async function badConfig(lab: Lab, dir: string, name: string, replace: RegExp, by: string): Promise<string> {
  const text = await readFile(lab.hosts.primary.configFile, 'utf8');
  if (!replace.test(text)) throw new Error(`the lab config has no line matching ${replace}`);
  const file = join(dir, `${name}.yaml`);
  await writeFile(file, text.replace(replace, by), {mode: 0o600});
  return file;
}

async function configCases(context: CampaignContext, lab: Lab): Promise<CaseResult[]> {
  const dir = join(context.dir, 'bad-configs');
  await mkdir(dir, {recursive: true});
  const marker = join(dir, 'pwned');
  const cases: Array<{name: string; replace: RegExp; by: string; expect: RegExp}> = [
    {name: 'interface eth0;reboot', replace: /^ {2}interface: .*$/m, by: '  interface: "eth0;reboot"', expect: /service\.interface/},
    {name: 'interface $(touch pwned)', replace: /^ {2}interface: .*$/m, by: `  interface: "$(touch ${marker})"`, expect: /service\.interface/},
    {name: 'listen address with a command after it', replace: /^listen: .*$/m, by: `listen: { address: "192.0.2.11; touch ${marker}", port: 7411 }`, expect: /listen\.address/},
    {name: 'pair name with backticks', replace: /^pair: .*$/m, by: `pair: "\`touch ${marker}\`"`, expect: /:\d+ pair: /},
    {name: 'service address with a newline and a command', replace: /^ {2}address: .*$/m, by: `  address: "192.0.2.100/25\\ntouch ${marker}"`, expect: /service\.address/},
    {name: 'port out of range', replace: /^listen: .*$/m, by: 'listen: { address: 192.0.2.11, port: 70000 }', expect: /listen\.port/},
  ];
  const rows: CaseResult[] = [];
  for (const c of cases) {
    const file = await badConfig(lab, dir, c.name.replace(/[^a-z0-9]+/gi, '-'), c.replace, c.by);
    const check = await run(process.execPath, [CLI, 'check-config', file]);
    // The agent itself must refuse to start on it, before it runs anything.
    const agent = await run(process.execPath, [AGENT, '--config', file]);
    const touched = await stat(marker).then(() => true, () => false);
    const ok = check.exitCode === 1 && c.expect.test(check.output) && agent.exitCode !== 0 && c.expect.test(agent.output) && !touched;
    rows.push({group: 'input', name: `config: ${c.name}`, ok,
      figures: `check-config exit ${check.exitCode}, agent exit ${agent.exitCode}: ${firstLine(check.output.split('\n').find((l) => c.expect.test(l))?.replace(`${dir}/`, '').replace(/^\s*- /, '') ?? check.output)}`,
      ...(ok ? {} : {detail: `check-config: ${check.output}\nagent: ${agent.output}${touched ? '\nthe injected command ran' : ''}`})});
  }
  return rows;
}

/** The backup's hook has a path with spaces, quotes and a $(…): it must run as it is, as one program. */
async function hookCase(lab: Lab, hook: {path: string; record: string; marker: string}): Promise<CaseResult> {
  const deadline = Date.now() + 10_000;
  let recorded = '';
  while (Date.now() < deadline && recorded === '') {
    recorded = await readFile(hook.record, 'utf8').catch(() => '');
    if (recorded === '') await sleep(100);
  }
  const touched = await stat(hook.marker).then(() => true, () => false);
  const ok = /^starting standby /m.test(recorded) && !touched;
  return {group: 'input', name: 'hook path with spaces, quotes and $(...)', ok,
    figures: `ran as one program: ${JSON.stringify(firstLine(recorded))}; the $(...) in its path ran nothing`,
    ...(ok ? {} : {detail: `hook record: ${JSON.stringify(recorded)}; marker ${touched ? 'created' : 'absent'}; hook ${hook.path}`})};
}

async function socketCases(lab: Lab): Promise<CaseResult[]> {
  const primary = lab.hosts.primary;
  const pid = primary.pid;
  const rows: CaseResult[] = [];
  const stillFine = async (): Promise<string | undefined> => {
    if (!isProcessAlive(pid)) return 'the agent died';
    const status = await statusOf(primary).catch((error: unknown) => error);
    if (status instanceof Error) return `status no longer answers: ${status.message}`;
    if ((status as {self: {pid: number}}).self.pid !== pid) return 'the agent restarted';
    const holdings = await holdingsOf(lab);
    return soleHolder(holdings) === 'primary' ? undefined : `the IP is on ${describeHoldings(holdings)}`;
  };

  const nobody = await run(process.execPath, [CLI, 'status', '--socket', primary.socket], {uid: 65534});
  let problem = await stillFine();
  // 3, UNKNOWN to a monitoring system: the check could not look, which says nothing of the pair.
  let ok = nobody.exitCode === STATUS_EXIT.unknown && /permission denied|EACCES/i.test(nobody.output) && problem === undefined;
  rows.push({group: 'input', name: 'control socket: a client that is not root', ok, figures: `exit ${nobody.exitCode}: ${firstLine(nobody.output)}`,
    ...(ok ? {} : {detail: `${nobody.output} ${problem ?? ''}`})});

  const requests: Array<{name: string; payload: Buffer | string; expect: RegExp}> = [
    {name: '1 MB without a newline', payload: Buffer.alloc(1024 * 1024, 0x41), expect: /larger than 65536 bytes/},
    {name: 'not JSON', payload: 'switchover now please\n', expect: /not JSON/},
    {name: 'a JSON array', payload: '[1,2,3]\n', expect: /not a JSON object/},
    {name: 'an unknown request type', payload: '{"id":"x","type":"reboot"}\n', expect: /request type: expected/},
    {name: 'switchover options of the wrong types', payload: '{"id":"x","type":"switchover","options":{"dryRun":"no","strict":0}}\n', expect: /must be booleans/},
    {name: 'a pause of 10 hours', payload: '{"id":"x","type":"switchover","options":{"dryRun":false,"strict":false,"pauseAfter":{"step":"assign-ip","seconds":36000}}}\n', expect: /pause after/},
    {name: 'an id of 10,000 characters', payload: `{"id":"${'x'.repeat(10_000)}","type":"status"}\n`, expect: /request id/},
    {name: 'binary garbage', payload: Buffer.from([0, 255, 1, 254, 10]), expect: /not JSON/},
    // A newer CLI's switchover is refused before anything is done, not half understood.
    {name: 'a switchover of a newer control protocol', payload: `{"id":"x","type":"switchover","protocol":${CONTROL_PROTOCOL + 1},` +
      '"options":{"dryRun":false,"strict":false}}\n', expect: new RegExp(`"PROTOCOL_MISMATCH".*and the client ${CONTROL_PROTOCOL + 1}: .*nothing was done`)},
  ];
  for (const r of requests) {
    const reply = await rawControl(primary.socket, r.payload);
    problem = await stillFine();
    ok = r.expect.test(reply) && /"ok":false/.test(reply) && problem === undefined;
    const message = /"message":"([^"]*)"/.exec(reply)?.[1] ?? reply.slice(0, 100);
    rows.push({group: 'input', name: `control request: ${r.name}`, ok, figures: `refused: ${message.slice(0, 110)}`,
      ...(ok ? {} : {detail: `reply ${JSON.stringify(reply.slice(0, 300))}; ${problem ?? ''}`})});
  }

  // Many clients at once, each half a request and then silence: every one is closed, none holds the agent up.
  const before = Date.now();
  const replies = await Promise.all(Array.from({length: 200}, () => rawControl(primary.socket, '{"id":"x","ty', 20_000)));
  const waitedS = (Date.now() - before) / 1000;
  problem = await stillFine();
  const rss = Number(/^VmRSS:\s+(\d+)/m.exec(await readFile(`/proc/${pid}/status`, 'utf8').catch(() => ''))?.[1] ?? 0) / 1024;
  ok = problem === undefined && waitedS < 20;
  rows.push({group: 'input', name: 'control socket: 200 clients send half a request and go silent', ok,
    figures: `all closed by the agent within ${waitedS.toFixed(1)} s (${replies.filter((r) => r === '').length} without a reply), agent RSS ${rss.toFixed(0)} MB, status still answers`,
    ...(ok ? {} : {detail: problem ?? `took ${waitedS} s`})});
  rows.push(await dribbleCase(primary, stillFine), await capCase(primary, stillFine), await pipelinedCase(primary, stillFine));
  return rows;
}

type ControlCounts = StatusReport['control'];

async function controlCounts(host: LabHost): Promise<ControlCounts> {
  return (await statusOf(host)).control;
}

/** "timedOut +1, refusedBusy +0": what the agent counted between two looks, as `baton status` shows it. */
function countedSince(before: ControlCounts, after: ControlCounts): Record<keyof ControlCounts, number> {
  return {refusedBusy: after.refusedBusy - before.refusedBusy, timedOut: after.timedOut - before.timedOut, extraRequests: after.extraRequests - before.extraRequests};
}

/** The agent's reply lines on a connection, parsed; a line that is not JSON is kept as its text. */
function replyLines(text: string): Array<{id?: string; ok?: boolean; error?: {code?: string; message?: string}}> {
  return text.split('\n').filter((line) => line !== '').map((line) => {
    try {
      return JSON.parse(line) as {id?: string; ok?: boolean; error?: {code?: string; message?: string}};
    } catch {
      return {error: {message: line}};
    }
  });
}

// The agent's control deadline, counted from accept (agent/control-server.ts DEFAULT_CONTROL_LIMITS), and how long a
// case waits for it at most: a deadline that moved with every byte would never cut the dribbling client.
const CONTROL_DEADLINE_MS = DEFAULT_CONTROL_LIMITS.requestDeadlineMs;
const CUT_WAIT_MS = 3 * CONTROL_DEADLINE_MS;
const DRIBBLE_EVERY_MS = 2000;

/** A client that sends one byte of a request every 2 s: an idle timeout would keep it forever; the deadline cuts it. */
async function dribbleCase(primary: LabHost, stillFine: () => Promise<string | undefined>): Promise<CaseResult> {
  const before = await controlCounts(primary);
  const request = '{"id":"dribble","type":"status"}\n';
  const started = Date.now();
  let sent = 0;
  const {answer, closedAfterMs} = await new Promise<{answer: string; closedAfterMs: number | undefined}>((resolve) => {
    const chunks: Buffer[] = [];
    const connection = createConnection(primary.socket);
    const dribble = setInterval(() => {
      if (connection.destroyed || sent >= request.length) return;
      connection.write(request[sent] ?? '');
      sent += 1;
    }, DRIBBLE_EVERY_MS);
    const end = (closedAfterMs: number | undefined): void => {
      clearInterval(dribble);
      clearTimeout(giveUp);
      connection.destroy();
      resolve({answer: Buffer.concat(chunks).toString('utf8'), closedAfterMs});
    };
    const giveUp = setTimeout(() => end(undefined), CUT_WAIT_MS);
    connection.on('data', (chunk) => chunks.push(chunk));
    connection.on('close', () => end(Date.now() - started));
    connection.on('error', () => undefined);
  });
  const counted = countedSince(before, await controlCounts(primary));
  const problem = await stillFine();
  const message = replyLines(answer)[0]?.error?.message ?? '';
  const ok = closedAfterMs !== undefined && /no complete request line within \d+ ms of connecting/.test(message) && counted.timedOut === 1 && problem === undefined;
  return {group: 'input', name: 'control socket: a client sends 1 byte every 2 s', ok,
    figures: closedAfterMs === undefined ? `still open after ${CUT_WAIT_MS / 1000} s, ${sent} bytes in`
      : `cut by the agent after ${(closedAfterMs / 1000).toFixed(1)} s and ${sent} bytes: "${message}"; counted timedOut +${counted.timedOut}`,
    ...(ok ? {} : {detail: `answer ${JSON.stringify(answer.slice(0, 300))}; counted ${JSON.stringify(counted)}; ${problem ?? ''}`})};
}

/** More clients than the cap hold connections open: the next one is refused at once, and the agent frees itself. */
async function capCase(primary: LabHost, stillFine: () => Promise<string | undefined>): Promise<CaseResult> {
  const {maxConnections} = DEFAULT_CONTROL_LIMITS;
  const before = await controlCounts(primary);
  const held: Socket[] = [];
  const closed: Array<Promise<number>> = [];
  const started = Date.now();
  try {
    for (let i = 0; i < maxConnections; i += 1) {
      const socket = await new Promise<Socket>((resolve, reject) => {
        const connection = createConnection(primary.socket, () => resolve(connection));
        connection.once('error', reject);
      });
      socket.on('error', () => undefined);
      socket.resume();
      closed.push(new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now() - started))));
      held.push(socket);
    }
    const refused = replyLines(await rawControl(primary.socket, '{"id":"over","type":"status"}\n'))[0];
    // The agent cuts the held ones at its deadline by itself; they never close their end.
    const cutAfterMs = await Promise.race([Promise.all(closed).then((times) => Math.max(...times)), sleep(CUT_WAIT_MS).then(() => undefined)]);
    const status = await statusOf(primary).then(() => 'answers', (error: unknown) => `fails: ${String(error)}`);
    const counted = countedSince(before, await controlCounts(primary));
    const problem = await stillFine();
    const message = refused?.error?.message ?? '';
    const ok = refused?.error?.code === 'AGENT_UNREACHABLE' && message.includes(`${maxConnections} control connections, its limit`) &&
      cutAfterMs !== undefined && status === 'answers' && counted.refusedBusy >= 1 && counted.timedOut >= maxConnections && problem === undefined;
    return {group: 'input', name: `control socket: ${maxConnections} silent clients, then one more`, ok,
      figures: `the ${maxConnections + 1}th refused at once: "${message.slice(0, 90)}"; the ${maxConnections} cut by the agent after ` +
        `${cutAfterMs === undefined ? '(never)' : `${(cutAfterMs / 1000).toFixed(1)} s`}; status then ${status}; counted refusedBusy +${counted.refusedBusy}, timedOut +${counted.timedOut}`,
      ...(ok ? {} : {detail: `refused ${JSON.stringify(refused)}; counted ${JSON.stringify(counted)}; ${problem ?? ''}`})};
  } finally {
    for (const socket of held) socket.destroy();
  }
}

/** Two requests on one connection: the first is served, the second refused with an error carrying its id. */
async function pipelinedCase(primary: LabHost, stillFine: () => Promise<string | undefined>): Promise<CaseResult> {
  const before = await controlCounts(primary);
  const replies = replyLines(await rawControl(primary.socket, '{"id":"first","type":"status"}\n{"id":"second","type":"switchover","options":{"dryRun":false,"strict":false}}\n'));
  const counted = countedSince(before, await controlCounts(primary));
  const problem = await stillFine();
  const first = replies.find((r) => r.id === 'first');
  const second = replies.find((r) => r.id === 'second');
  const ok = first?.ok === true && second?.ok === false && /one request per connection/.test(second.error?.message ?? '') &&
    counted.extraRequests === 1 && problem === undefined;
  return {group: 'input', name: 'control socket: a switchover pipelined behind a status', ok,
    figures: `status answered; the switchover refused: "${(second?.error?.message ?? '').slice(0, 80)}"; counted extraRequests +${counted.extraRequests}; the IP stayed`,
    ...(ok ? {} : {detail: `replies ${JSON.stringify(replies).slice(0, 400)}; counted ${JSON.stringify(counted)}; ${problem ?? ''}`})};
}

async function flagCases(lab: Lab): Promise<CaseResult[]> {
  const socket = lab.hosts.primary.socket;
  const cases: Array<{args: string[]; expect: RegExp}> = [
    {args: ['switchover', '--min-requests', '0'], expect: /--min-requests: expected a whole number from 1 to 1000000/},
    {args: ['switchover', '--min-requests', '1e9'], expect: /--min-requests/},
    {args: ['switchover', '--min-requests=-1'], expect: /--min-requests/},
    {args: ['switchover', '--confirm-timeout', '100000'], expect: /--confirm-timeout: expected a whole number from 1 to 3600/},
    {args: ['switchover', '--pause-after', 'nosuch-step'], expect: /--pause-after/},
    {args: ['switchover', '--pause-after', 'assign-ip:0'], expect: /--pause-after/},
    {args: ['switchover', '--pause-after', 'assign-ip:1;reboot'], expect: /--pause-after/},
    {args: ['rehearse', '--interval-ms', '0'], expect: /--interval-ms/},
    {args: ['lab', 'run', '--web', 'apache'], expect: /--web: expected builtin or nginx/},
    {args: ['status', '--min-requests', '3'], expect: /--min-requests/},
  ];
  const rows: CaseResult[] = [];
  for (const c of cases) {
    // lab takes no --socket (it is refused there, not ignored): the lab case gets none.
    const result = await run(process.execPath, [CLI, ...c.args, ...(c.args[0] === 'lab' ? [] : ['--socket', socket])]);
    const holdings = await holdingsOf(lab);
    // status speaks the monitoring plugins' statuses: its usage error is UNKNOWN (3), the others' EX_USAGE (64).
    const expectedExit = c.args[0] === 'status' ? STATUS_EXIT.unknown : EXIT_USAGE;
    const ok = result.exitCode === expectedExit && c.expect.test(firstLine(result.output)) && soleHolder(holdings) === 'primary';
    rows.push({group: 'input', name: `cli: baton ${c.args.join(' ')}`, ok, figures: `exit ${result.exitCode}: ${firstLine(result.output)}`,
      ...(ok ? {} : {detail: `${result.output.slice(0, 400)}; IP on ${describeHoldings(holdings)}`})});
  }
  return rows;
}

export const inputPart: CampaignPart = {
  name: 'input',
  about: 'shell injection in config values, hook paths with quotes, non-root and malformed control clients, CLI flags out of range',
  async run(context) {
    // The hook lives where a careless path could hurt most: spaces, both quotes and a command substitution.
    const hookDir = join(context.dir, "hooks dir with 'quotes'");
    await mkdir(hookDir, {recursive: true});
    // The hook runs as script_user (nobody): it must reach its program, and write its record somewhere of its own.
    await chmod(context.dir, 0o755);
    await chmod(hookDir, 0o755);
    const recordDir = join(context.dir, 'hook-out');
    await mkdir(recordDir, {recursive: true});
    await chmod(recordDir, 0o777);
    // A shell would create the marker in the agent's working directory, this process's.
    const hook = {path: join(hookDir, 'on "state" $(touch baton-hook-pwned).sh'), record: join(recordDir, 'hook-record'),
      marker: join(process.cwd(), 'baton-hook-pwned')};
    await writeFile(hook.path, `#!/bin/sh\necho "$1 $2 $3" >> '${hook.record}'\n`);
    await chmod(hook.path, 0o755);
    const hookConfig = `hooks:\n  on_state_change: ${JSON.stringify(hook.path)}\n`;
    return await withCampaignLab(context, {hostConfig: {backup: hookConfig}}, async (lab) => [
      await hookCase(lab, hook),
      ...await configCases(context, lab),
      ...await socketCases(lab),
      ...await flagCases(lab),
    ]);
  },
};
