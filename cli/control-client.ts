// Talks to the local agent: connect to the control socket, send one request, read the reply, with a timeout.

import {createConnection} from 'node:net';
import {
  checkResult, CONTROL_PROTOCOL, decodeReply, encodeLine, type ControlReply, type ControlRequest, type ControlResult, type SwitchProgress,
} from '../agent/control-protocol.js';
import {BatonError, isBatonError} from '../agent/errors.js';

// Status is answered in milliseconds; 5 s covers a busy host without leaving an operator staring at nothing.
export const DEFAULT_REQUEST_TIMEOUT_MS = 5000;

export interface CallOptions {
  /** Give up when the agent is silent this long (reset by each progress line). */
  readonly idleTimeoutMs?: number;
  readonly onProgress?: (progress: SwitchProgress) => void;
}

/**
 * Sends one request (with this baton's CONTROL_PROTOCOL), passes progress lines on as they come, and resolves with
 * the final reply. Throws BatonError AGENT_UNREACHABLE with the fix in the message, or PROTOCOL_MISMATCH when the
 * agent speaks another control protocol or sends a line that is not a reply (decodeReply).
 */
export function sendRequest(socketPath: string, request: ControlRequest, timeoutMs = DEFAULT_REQUEST_TIMEOUT_MS, onProgress?: (progress: SwitchProgress) => void): Promise<Extract<ControlReply, {type: 'result'}>> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(socketPath);
    let buffered = '';
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      fn();
    };
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => settle(() => reject(new BatonError('AGENT_UNREACHABLE',
        `the agent at ${socketPath} did not answer within ${timeoutMs} ms; check \`journalctl -u baton-agent\``))), timeoutMs);
    };
    arm();
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(encodeLine({...request, protocol: CONTROL_PROTOCOL})));
    socket.on('error', (error: NodeJS.ErrnoException) => settle(() => reject(unreachable(socketPath, error))));
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        let reply: ControlReply;
        try {
          reply = decodeReply(line);
        } catch (error) {
          settle(() => reject(fromAgent(socketPath, error)));
          return;
        }
        if (reply.type === 'progress') {
          arm();
          onProgress?.(reply.progress);
          continue;
        }
        settle(() => resolve(reply));
        return;
      }
    });
    socket.on('end', () => settle(() => reject(new BatonError('AGENT_UNREACHABLE', `the agent at ${socketPath} closed the connection without answering`))));
  });
}

/**
 * sendRequest, with a failed reply turned into a BatonError carrying the agent's code, and a result checked as the
 * request needs it (checkResult). A request that changes something is sent only to an agent that has first
 * answered a status in this baton's protocol: an agent of baton 0.1.0 reads no protocol version, and would start
 * a switch that this baton then could not follow.
 */
export async function callAgent(socketPath: string, request: ControlRequest, timeoutMs = DEFAULT_REQUEST_TIMEOUT_MS, onProgress?: (progress: SwitchProgress) => void): Promise<ControlResult> {
  if (request.type !== 'status') await callAgent(socketPath, {id: `${request.id.slice(0, 50)}-protocol`, type: 'status'}, timeoutMs);
  const reply = await sendRequest(socketPath, request, timeoutMs, onProgress);
  if (!reply.ok) throw new BatonError(reply.error.code, reply.error.message);
  try {
    return checkResult(request.type, reply.result);
  } catch (error) {
    throw fromAgent(socketPath, error);
  }
}

/** decodeReply's and checkResult's complaints name the agent: "the agent at /run/baton/control.sock speaks …". */
function fromAgent(socketPath: string, error: unknown): BatonError {
  const code = isBatonError(error) ? error.code : 'PROTOCOL_MISMATCH';
  return new BatonError(code, `the agent at ${socketPath} ${error instanceof Error ? error.message : String(error)}`, {cause: error});
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
