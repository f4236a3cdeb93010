// Unix-socket control server: decodes one request per connection, hands it to the agent, writes the reply.
// The socket is mode 0600 in a 0700 directory: only root (the agent's user) may ask the agent anything.

import {chmod, mkdir, unlink} from 'node:fs/promises';
import {createConnection, createServer, type Server, type Socket} from 'node:net';
import {dirname} from 'node:path';
import {
  decodeRequest, encodeLine, MAX_REQUEST_BYTES, type ControlReply, type ControlRequest, type ResumeResult, type StatusReport,
  type SwitchoverOptions, type SwitchProgress, type SwitchResult, type FailResult,
} from './control-protocol.js';
import {BatonError, describeError, isBatonError} from './errors.js';
import type {Logger} from './log.js';

export interface ControlHandler {
  status(): Promise<StatusReport>;
  switchover(options: SwitchoverOptions, emit: (progress: SwitchProgress) => void): Promise<SwitchResult>;
  resume(peer: boolean): Promise<ResumeResult>;
  failActive(seconds: number): Promise<FailResult>;
}

// A client that opens the socket and says nothing is dropped after this long, so it cannot pin resources.
const REQUEST_TIMEOUT_MS = 5000;

export interface ControlServer {
  close(): Promise<void>;
}

/** Throws BatonError AGENT_UNREACHABLE when the socket cannot be created or another agent owns it. */
export async function startControlServer(path: string, handler: ControlHandler, log: Logger): Promise<ControlServer> {
  await mkdir(dirname(path), {recursive: true, mode: 0o700});
  await removeStaleSocket(path);
  const server = createServer((socket) => serve(socket, handler, log));
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) => reject(new BatonError('AGENT_UNREACHABLE', `cannot listen on control socket ${path}: ${describeError(error)}`, {cause: error})));
    // Created 0600 from the start: umask for the bind, chmod for certainty.
    const oldMask = process.umask(0o177);
    server.listen(path, () => {
      process.umask(oldMask);
      resolve();
    });
  });
  await chmod(path, 0o600);
  return {
    close: () => closeServer(server, path),
  };
}

function serve(socket: Socket, handler: ControlHandler, log: Logger): void {
  let buffered = '';
  let answered = false;
  socket.setEncoding('utf8');
  socket.setTimeout(REQUEST_TIMEOUT_MS, () => socket.destroy());
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: string) => {
    if (answered) return;
    buffered += chunk;
    const newline = buffered.indexOf('\n');
    if (newline < 0) {
      if (buffered.length > MAX_REQUEST_BYTES) {
        answered = true;
        reply(socket, failure('?', new BatonError('BAD_REQUEST', `request larger than ${MAX_REQUEST_BYTES} bytes`)));
      }
      return;
    }
    answered = true;
    const request = decodeRequest(buffered.slice(0, newline));
    if (typeof request === 'string') {
      reply(socket, failure('?', new BatonError('BAD_REQUEST', request)));
      return;
    }
    // A switch runs for seconds: the idle timeout is for clients that never send their request, not for this.
    socket.setTimeout(0);
    const emit = (progress: SwitchProgress): void => {
      if (!socket.destroyed) socket.write(encodeLine({id: request.id, type: 'progress', progress}));
    };
    void handle(request, handler, emit).then((answer) => reply(socket, answer), (error: unknown) => {
      log.error(`(control) ${request.type} failed: ${describeError(error)}`);
      reply(socket, failure(request.id, error));
    });
  });
}

async function handle(request: ControlRequest, handler: ControlHandler, emit: (progress: SwitchProgress) => void): Promise<ControlReply> {
  switch (request.type) {
    case 'status':
      return {id: request.id, type: 'result', ok: true, result: await handler.status()};
    case 'switchover':
      return {id: request.id, type: 'result', ok: true, result: await handler.switchover(request.options, emit)};
    case 'resume':
      return {id: request.id, type: 'result', ok: true, result: await handler.resume(request.peer)};
    case 'fail-active':
      return {id: request.id, type: 'result', ok: true, result: await handler.failActive(request.seconds)};
  }
}

function failure(id: string, error: unknown): ControlReply {
  const code = isBatonError(error) ? error.code : 'BAD_REQUEST';
  return {id, type: 'result', ok: false, error: {code, message: describeError(error)}};
}

function reply(socket: Socket, answer: ControlReply): void {
  if (socket.destroyed) return;
  socket.end(encodeLine(answer));
}

/** A socket file left by a dead agent is removed; one that answers belongs to a running agent. */
async function removeStaleSocket(path: string): Promise<void> {
  const inUse = await new Promise<boolean>((resolve) => {
    const probe = createConnection(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (inUse) {
    throw new BatonError('AGENT_UNREACHABLE', `another baton-agent is already serving ${path}; stop it first, or give this one another control_socket`);
  }
  await unlink(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
}

async function closeServer(server: Server, path: string): Promise<void> {
  // net.Server unlinks its unix socket on close; the unlink is for a server that never got that far.
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await unlink(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
}
