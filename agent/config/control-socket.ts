// The control socket named by a config file, read alone, for the CLI: `baton status` must reach a healthy agent even
// when another key of the file has a typo or the secret file is unreadable to whoever runs it (the agent read the
// file when it started; what it became since is check-config's business, not status's).

import {BatonError} from '../errors.js';
import {DEFAULT_CONTROL_SOCKET} from './schema.js';
import {SOCKET_PATH} from './value-specs.js';
import {readYaml} from './yaml-reader.js';

export interface ControlSocketLookup {
  readonly socket: string;
  /** Set when the file could not be read as a whole: what was used instead, for the user to see. */
  readonly note: string | undefined;
}

/**
 * control_socket from the YAML text of `file`, the default when the key is absent. Nothing else is validated.
 * Throws BatonError CONFIG_INVALID naming the line when control_socket itself is not a socket path.
 */
export function readControlSocket(text: string, file: string): ControlSocketLookup {
  const reader = readYaml(text);
  const syntaxErrors = reader.problems.length;
  // Every other key is unknown to a root of one key: those problems are not this reader's to report.
  const top = reader.root(['control_socket']);
  const before = reader.problems.length;
  const field = top.field('control_socket');
  const socket = reader.optional(field, SOCKET_PATH, DEFAULT_CONTROL_SOCKET);
  const problem = reader.problems[before];
  if (problem !== undefined) {
    throw new BatonError('CONFIG_INVALID', `${file}:${problem.line} ${problem.text}; fix it, or pass --socket PATH`);
  }
  if (socket === undefined) {
    return {socket: DEFAULT_CONTROL_SOCKET, note: `${file} is not a mapping of settings (\`baton check-config\` says why): ` +
      `trying the default control socket ${DEFAULT_CONTROL_SOCKET}`};
  }
  if (syntaxErrors > 0) {
    return {socket, note: `${file} has YAML syntax errors (\`baton check-config\` lists them); ` +
      (field.value === undefined ? `no control_socket found in it: trying the default ${socket}` : `its control_socket read alone: ${socket}`)};
  }
  return {socket, note: undefined};
}
