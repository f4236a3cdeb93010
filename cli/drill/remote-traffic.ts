// The drill's client on another machine (`baton rehearse --client HOST`): the prober that ships with baton runs
// there over ssh and streams its records back as JSON lines, so the probes come from a real third host.

import {spawn} from 'node:child_process';
import {join} from 'node:path';
import {BatonError} from '../../agent/errors.js';
import {parseProbeLog, type ProbeRecord} from '../lab/probe-report.js';
import type {Traffic} from './drill.js';

export interface RemoteTrafficOptions {
  /** [USER@]HOST, as ssh takes it. */
  readonly client: string;
  /** An ssh config file (ssh -F), for keys and host-key settings; the user's own config otherwise. */
  readonly sshConfig: string | undefined;
  /** Where baton is installed on the client (it carries its own Node and the prober). */
  readonly batonDir: string;
  readonly url: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly durationS: number;
  readonly maxProbes: number;
}

// ssh connects and the prober records its first probe within a few seconds on any sane network.
const START_TIMEOUT_MS = 15_000;
// After SIGTERM the remote prober settles its last probes (≤ timeoutMs) and ssh exits; beyond this it is killed.
const STOP_GRACE_MS = 3000;

export async function startRemoteTraffic(options: RemoteTrafficOptions): Promise<Traffic> {
  const remote = [join(options.batonDir, 'node_modules/.bin/node'), join(options.batonDir, 'dist/cli/lab/probe.js'),
    '--url', options.url, '--out', '/dev/stdout', '--interval-ms', String(options.intervalMs), '--timeout-ms', String(options.timeoutMs),
    '--duration-s', String(options.durationS), '--max-probes', String(options.maxProbes)];
  // BatchMode: never stop to ask for a password in the middle of a drill. The remote command is one argv per
  // word; ssh joins them for the remote shell, and none holds anything but paths, a URL and numbers.
  const args = [...(options.sshConfig === undefined ? [] : ['-F', options.sshConfig]), '-o', 'BatchMode=yes', options.client, ...remote];
  const child = spawn('ssh', args, {stdio: ['ignore', 'pipe', 'pipe']});
  let text = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    text += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-2000);
  });
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  let done = false;
  void exited.then(() => {
    done = true;
  });
  const read = async (): Promise<ProbeRecord[]> => parseProbeLog(text);
  const stop = async (): Promise<ProbeRecord[]> => {
    if (!done) {
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, STOP_GRACE_MS))]);
      if (!done) child.kill('SIGKILL');
    }
    return read();
  };
  const deadline = Date.now() + START_TIMEOUT_MS;
  while ((await read()).length === 0) {
    if (done || Date.now() > deadline) {
      await stop();
      throw new BatonError('COMMAND_FAILED', `the client ${options.client} did not start probing over ssh` +
        `${done ? '' : ` within ${START_TIMEOUT_MS} ms`}: ${stderr.trim() || 'no output'}. Check \`ssh ${options.client} true\` works ` +
        `without a password, and that baton is installed there under ${options.batonDir}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {read, stop};
}
