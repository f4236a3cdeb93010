// `baton status [--json]`: asks the local agent and prints both hosts as it sees them, with a verdict a monitoring
// system can use: its first line, its exit status (status-check.ts, exit-codes.ts) and, under --json, one object.
// Status prints its verdict on stdout even when the agent cannot be asked, as monitoring plugins do: a plugin's
// stderr is not what Nagios shows.

import {readFile} from 'node:fs/promises';
import {readControlSocket} from '../../agent/config/control-socket.js';
import {describeFsError} from '../../agent/config/messages.js';
import {DEFAULT_CONFIG_FILE, DEFAULT_CONTROL_SOCKET} from '../../agent/config/schema.js';
import {CONTROL_PROTOCOL, type EtcdStatusReport, isEtcdStatus, type StatusReport} from '../../agent/control-protocol.js';
import {BatonError, describeError, isBatonError} from '../../agent/errors.js';
import {VERSION} from '../../agent/version.js';
import {callAgent} from '../control-client.js';
import {formatEtcdStatus, formatStatus} from '../format.js';
import type {Output} from '../output.js';
import {checkEtcdStatus, checkFailure, checkStatus, type StatusCheck} from '../status-check.js';

export interface StatusOptions {
  readonly config: string;
  readonly socket: string | undefined;
  readonly json: boolean;
}

/**
 * The version of `baton status --json`'s schema: the object printed, its `check`, `cli` and `error` and the
 * report's fields. Raised when a field is removed, renamed or changes meaning; a field added leaves it.
 */
export const STATUS_SCHEMA_VERSION = 1;

/** What `baton status --json` prints: the check, then the agent's report, or the error that kept it from answering. */
export interface StatusJson extends Partial<Omit<StatusReport, 'self' | 'service'>>, Partial<Omit<EtcdStatusReport, 'self' | 'service'>> {
  readonly self?: StatusReport['self'] | EtcdStatusReport['self'];
  readonly service?: StatusReport['service'];
  readonly schemaVersion: number;
  readonly check: StatusCheck;
  /** This baton: its version and the control protocol it speaks. */
  readonly cli: {readonly version: string; readonly controlProtocol: number};
  /** What was used instead of a config file that could not be read as a whole. */
  readonly notes?: readonly string[];
  /** Why there is no report: an ErrorCode, or USAGE for a command line that did not parse. */
  readonly error?: {readonly code: string; readonly message: string};
}

export async function run(out: Output, options: StatusOptions): Promise<number> {
  const notes: string[] = [];
  let report: StatusReport | EtcdStatusReport | undefined;
  let check: StatusCheck;
  let failure: StatusJson['error'];
  try {
    const socket = await resolveSocket(options.config, options.socket, (note) => notes.push(note));
    report = await callAgent(socket, {id: 'status', type: 'status'}) as StatusReport | EtcdStatusReport;
    check = isEtcdStatus(report) ? checkEtcdStatus(report) : checkStatus(report as StatusReport);
  } catch (error) {
    failure = {code: isBatonError(error) ? error.code : 'UNEXPECTED', message: describeError(error)};
    check = checkFailure(error);
  }
  if (options.json) {
    out.stdout(`${JSON.stringify(statusJson(check, report, failure, notes), null, 2)}\n`);
  } else {
    for (const note of notes) out.stderr(`baton: ${note}\n`);
    out.stdout(report === undefined ? `${check.summary}\n`
      : isEtcdStatus(report) ? formatEtcdStatus(report, check) : formatStatus(report as StatusReport, check));
  }
  return check.exitCode;
}

/** `baton status --json`'s answer to a command line that did not parse: unknown, as for any status that cannot run. */
export function usageErrorJson(message: string): string {
  return `${JSON.stringify(statusJson(checkFailure(new Error(message)), undefined, {code: 'USAGE', message}, []), null, 2)}\n`;
}

function statusJson(check: StatusCheck, report: StatusReport | EtcdStatusReport | undefined, error: StatusJson['error'], notes: readonly string[]): StatusJson {
  return {
    schemaVersion: STATUS_SCHEMA_VERSION, check, cli: {version: VERSION, controlProtocol: CONTROL_PROTOCOL},
    ...(notes.length === 0 ? {} : {notes}),
    ...(report ?? {error}),
  };
}

/**
 * The control socket: --socket if given; else control_socket as the config file names it, read alone (nothing else
 * in the file is checked, so a typo elsewhere or a secret this user cannot read does not keep baton from a healthy
 * agent); else, when the default config file cannot be read at all, the default socket. `note` is told what was
 * used instead of the file. Throws BatonError CONFIG_INVALID when the socket cannot be found.
 */
export async function resolveSocket(configFile: string, socket: string | undefined, note: (text: string) => void): Promise<string> {
  if (socket !== undefined) return socket;
  let text: string;
  try {
    text = await readFile(configFile, 'utf8');
  } catch (error) {
    // A config file named on purpose is not second-guessed: the default socket may belong to another agent.
    if (configFile !== DEFAULT_CONFIG_FILE) {
      throw new BatonError('CONFIG_INVALID', `cannot find the control socket from ${configFile}: cannot read it (${describeFsError(error)}); ` +
        'pass --socket PATH to reach an agent directly', {cause: error});
    }
    note(`cannot read ${configFile} (${describeFsError(error)}): trying the default control socket ${DEFAULT_CONTROL_SOCKET}`);
    return DEFAULT_CONTROL_SOCKET;
  }
  const found = readControlSocket(text, configFile);
  if (found.note !== undefined) note(found.note);
  return found.socket;
}
