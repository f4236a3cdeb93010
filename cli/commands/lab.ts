// `baton lab up|status|down|run`: a two-host pair plus a client in network namespaces on this machine.

import {join} from 'node:path';
import {createExecaRunner} from '../../agent/adapters/execa-runner.js';
import {BatonError, describeError} from '../../agent/errors.js';
import type {CommandRunner} from '../../agent/ports.js';
import type {LabAction} from '../args.js';
import {formatStatus} from '../format.js';
import {inClient, LAB_BASE_DIR, labDown, labStatus, labUp, listLabs, readLab, waitForSettledPair, type Lab} from '../lab/lab.js';
import type {Output} from '../output.js';

export interface LabOptions {
  readonly action: LabAction;
  readonly json: boolean;
}

// Agents decide within two heartbeat intervals plus an ARP probe; 15 s is generous even on a loaded CI host.
const SETTLE_TIMEOUT_MS = 15_000;

export async function run(out: Output, options: LabOptions, runner: CommandRunner = createExecaRunner()): Promise<number> {
  requireRoot();
  switch (options.action) {
    case 'up': {
      const existing = await listLabs(runner);
      if (existing.length > 0) {
        throw new BatonError('LAB_FAILED', `a lab already exists (${existing.join(', ')}); use it with \`baton lab status\`, or remove it with \`baton lab down\``);
      }
      const lab = await labUp({runner, progress: (line) => out.stderr(`${line}\n`)});
      await waitForSettledPair(lab, SETTLE_TIMEOUT_MS);
      out.stdout(`lab ${lab.prefix} is up: primary ${lab.hosts.primary.address}, backup ${lab.hosts.backup.address}, client ${lab.client.address}, service IP ${lab.serviceIp}\n` +
        `  status:  baton lab status\n  one host: baton status --config ${lab.hosts.primary.configFile}\n  remove:  baton lab down\n`);
      return 0;
    }
    case 'status': {
      const lab = await currentLab(runner);
      const status = await labStatus(lab);
      out.stdout(options.json ? `${JSON.stringify(status, null, 2)}\n` : `${formatStatus(status.primary)}\n${formatStatus(status.backup)}`);
      return 0;
    }
    case 'down': {
      const labs = await listLabs(runner);
      for (const prefix of labs) {
        await labDown(runner, prefix);
        out.stdout(`lab ${prefix} removed: agents stopped, namespaces and files deleted\n`);
      }
      if (labs.length === 0) out.stdout('no lab to remove\n');
      return 0;
    }
    case 'run':
      return runDrill(out, options, runner);
  }
}

/** For now the drill is: build, settle, check the client reaches the service IP, show both statuses, remove. */
async function runDrill(out: Output, options: LabOptions, runner: CommandRunner): Promise<number> {
  const lab = await labUp({runner, progress: (line) => out.stderr(`${line}\n`)});
  try {
    const status = await waitForSettledPair(lab, SETTLE_TIMEOUT_MS);
    out.stderr(`lab ${lab.prefix}: agents settled; the client pings the service IP ${lab.serviceIp}\n`);
    const reached = await clientReaches(runner, lab, out);
    if (options.json) {
      out.stdout(`${JSON.stringify({lab: lab.prefix, clientReachesServiceIp: reached, ...status}, null, 2)}\n`);
    } else {
      out.stdout(`== baton status on the primary (${lab.hosts.primary.namespace})\n${formatStatus(status.primary)}\n`);
      out.stdout(`== baton status on the backup (${lab.hosts.backup.namespace})\n${formatStatus(status.backup)}\n`);
      out.stdout(reached ? `client ${lab.client.address} reaches the service IP ${lab.serviceIp}\n` : `client ${lab.client.address} does NOT reach the service IP ${lab.serviceIp}\n`);
    }
    return reached ? 0 : 1;
  } finally {
    await labDown(runner, lab.prefix);
    out.stderr(`lab ${lab.prefix}: removed\n`);
  }
}

async function clientReaches(runner: CommandRunner, lab: Lab, out: Output): Promise<boolean> {
  try {
    await inClient(runner, lab, 'ping', ['-c', '1', '-W', '1', lab.serviceIp.split('/')[0] ?? '']);
    return true;
  } catch (error) {
    out.stderr(`lab ${lab.prefix}: ping from the client failed: ${describeError(error)}\n`);
    return false;
  }
}

async function currentLab(runner: CommandRunner): Promise<Lab> {
  const labs = await listLabs(runner);
  const prefix = labs.at(-1);
  if (prefix === undefined) throw new BatonError('LAB_FAILED', 'no lab is running; start one with `baton lab up`');
  return readLab(join(LAB_BASE_DIR, prefix));
}

function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new BatonError('LAB_FAILED', 'the lab creates network namespaces and needs root: run it with sudo');
  }
}
