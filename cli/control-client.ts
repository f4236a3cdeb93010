// Talks to the local agent: connect to the control socket, send one request, read the reply, with a timeout.

import {createConnection} from 'node:net';
import {decodeReply, encodeLine, type ControlReply, type ControlRequest} from '../agent/control-protocol.js';
import {BatonError} from '../agent/errors.js';

// Status is answered in milliseconds; 5 s covers a busy host without leaving an operator staring at nothing.
export const DEFAULT_REQUEST_TIMEOUT_MS = 5000;

/** Sends one request and resolves with the reply. Throws BatonError AGENT_UNREACHABLE with the fix in the message. */
export function sendRequest(socketPath: string, request: ControlRequest, timeoutMs = DEFAULT_REQUEST_TIMEOUT_MS): Promise<ControlReply> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(socketPath);
    let buffered = '';
    let settled = false;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      fn();
    };
    const timer = setTimeout(() => settle(() => reject(new BatonError('AGENT_UNREACHABLE',
      `the agent at ${socketPath} did not answer within ${timeoutMs} ms; check \`journalctl -u baton-agent\``))), timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(encodeLine(request)));
    socket.on('error', (error: NodeJS.ErrnoException) => settle(() => reject(unreachable(socketPath, error))));
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      const newline = buffered.indexOf('\n');
      if (newline < 0) return;
      const line = buffered.slice(0, newline);
      settle(() => {
        try {
          resolve(decodeReply(line));
        } catch (error) {
          reject(new BatonError('AGENT_UNREACHABLE', `the agent at ${socketPath} sent an unreadable reply`, {cause: error}));
        }
      });
    });
    socket.on('end', () => settle(() => reject(new BatonError('AGENT_UNREACHABLE', `the agent at ${socketPath} closed the connection without answering`))));
  });
}

function unreachable(socketPath: string, error: NodeJS.ErrnoException): BatonError {
  switch (error.code) {
    case 'ENOENT':
      return new BatonError('AGENT_UNREACHABLE', `baton-agent is not running: no control socket at ${socketPath}. Start it with \`systemctl start baton-agent\`, or pass --config/--socket for another agent`, {cause: error});
    case 'ECONNREFUSED':
      return new BatonError('AGENT_UNREACHABLE', `baton-agent is not running: ${socketPath} exists but nobody listens (an agent died?). Start it with \`systemctl start baton-agent\``, {cause: error});
    case 'EACCES':
      return new BatonError('AGENT_UNREACHABLE', `permission denied on ${socketPath}: the control socket is for root only; run baton with sudo`, {cause: error});
    default:
      return new BatonError('AGENT_UNREACHABLE', `cannot reach baton-agent at ${socketPath}: ${error.message}`, {cause: error});
  }
}
