// Running the lab's client classes (dist/cli/lab/clients.js: new connections, keep-alive, downloads, uploads)
// inside a namespace, for the tests and the benchmark: start them, then wait for their summary or stop them early,
// by PID.

import {readFile} from 'node:fs/promises';
import {setTimeout as sleep} from 'node:timers/promises';
import {fileURLToPath} from 'node:url';
import {BatonError, describeError} from '../../agent/errors.js';
import type {ClientRecord, ClientsSummary} from './clients.js';
import {spawnInNamespace} from './namespaces.js';
import {isProcessAlive, stopProcessByPid} from './web.js';

export interface ClientsOptions {
  readonly namespace: string | undefined;
  /** http:// URL of the service, e.g. http://192.0.2.100/. */
  readonly url: string;
  readonly durationS: number;
  /** Where the summary (JSON) goes; its output goes to `${out}.log`. */
  readonly out: string;
  /** Extra options for clients.js, e.g. ['--keep-alive', '4']. */
  readonly args?: readonly string[];
  /** Where every request goes, one JSON line each (clients.js --records), for readClientRecords. */
  readonly records?: string;
}

export interface RunningClients {
  readonly pid: number;
  /** Waits for the clients to end by themselves, then returns their summary. */
  wait(): Promise<ClientsSummary>;
  /** Ends them now (SIGTERM: what is in flight settles first), then returns their summary. */
  stop(): Promise<ClientsSummary>;
}

const CLIENTS_SCRIPT = fileURLToPath(new URL('./clients.js', import.meta.url));
// What is in flight settles before the summary is written: a download or an upload within its 15 s timeout.
const SETTLE_MS = 20_000;
const POLL_MS = 50;

export async function startClients(options: ClientsOptions): Promise<RunningClients> {
  const logFile = `${options.out}.log`;
  const pid = await spawnInNamespace(options.namespace, process.execPath,
    [CLIENTS_SCRIPT, '--url', options.url, '--out', options.out, '--duration-s', String(options.durationS),
      ...(options.records === undefined ? [] : ['--records', options.records]), ...(options.args ?? [])], logFile);
  const summary = async (): Promise<ClientsSummary> => {
    try {
      return JSON.parse(await readFile(options.out, 'utf8')) as ClientsSummary;
    } catch (error) {
      const output = (await readFile(logFile, 'utf8').catch(() => '')).trim();
      throw new BatonError('LAB_FAILED', `the clients in ${options.namespace ?? 'this host'} (pid ${pid}) left no summary in ${options.out}: ` +
        `${describeError(error)}; their output: ${output === '' ? '(none)' : output}`, {cause: error});
    }
  };
  return {
    pid,
    async wait() {
      const deadline = Date.now() + options.durationS * 1000 + SETTLE_MS;
      while (isProcessAlive(pid) && Date.now() < deadline) await sleep(POLL_MS);
      if (isProcessAlive(pid)) await stopProcessByPid(pid, SETTLE_MS);
      return summary();
    },
    async stop() {
      await stopProcessByPid(pid, SETTLE_MS);
      return summary();
    },
  };
}

/** The requests clients.js wrote with --records (complete once their summary is there), in completion order. */
export async function readClientRecords(file: string): Promise<ClientRecord[]> {
  const text = await readFile(file, 'utf8');
  return text.split('\n').filter((line) => line !== '').map((line, index) => {
    try {
      return JSON.parse(line) as ClientRecord;
    } catch (error) {
      throw new BatonError('LAB_FAILED', `${file} line ${index + 1} is not a client record: ${JSON.stringify(line.slice(0, 200))}`, {cause: error});
    }
  });
}
