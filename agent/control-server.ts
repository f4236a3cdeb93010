// Unix-socket control server: decodes one request per connection, hands it to the agent, writes the reply; bounds
// what a client can hold (a deadline from accept for its request, a cap on connections open at once).
// The socket is mode 0600 in a 0700 directory: only root (the agent's user) may ask the agent anything.

import {chmod, mkdir, unlink} from 'node:fs/promises';
import {createConnection, createServer, type Server, type Socket} from 'node:net';
import {dirname} from 'node:path';
import {
  CONTROL_PROTOCOL, decodeRequest, encodeLine, MAX_REQUEST_BYTES, protocolRefusal, type AnyAgentStatus, type ControlReply,
  type ControlRequest, type ControlResult, type DrainResult, type ControlStats, type ResumeResult, type SwitchoverOptions, type SwitchProgress, type SwitchResult, type FailResult, type RehearsalAids,
} from './control-protocol.js';
import {BatonError, describeError, isBatonError} from './errors.js';
import type {Logger} from './log.js';

export interface ControlHandler {
  /** The agent's status; the server adds its own refusal counts to the reply. */
  status(): Promise<AnyAgentStatus>;
  switchover(options: SwitchoverOptions, emit: (progress: SwitchProgress) => void): Promise<SwitchResult>;
  resume(peer: boolean): Promise<ResumeResult>;
  failActive(seconds: number): Promise<FailResult>;
  /** Whether both hosts enable the rehearsal aids; asks the peer. */
  rehearsalAids(): Promise<RehearsalAids>;
  /** etcd mode's `baton drain HOST`. */
  drain(host: string, emit: (progress: SwitchProgress) => void): Promise<DrainResult>;
}

export interface ControlLimits {
  /** From accept, not from the last byte: a client must have sent its whole request line by then. */
  readonly requestDeadlineMs: number;
  /** Connections served at once; a further one is answered with an error and closed. */
  readonly maxConnections: number;
}

// A request is one line the CLI writes at once: 5 s from accept covers a host swapping hard, and a client that
// dribbles a byte now and then is dropped at the same moment as one that says nothing.
// 16 at once: an operator's status and switchover, the drill's status polls and a monitoring probe use a few;
// beyond that a client is looping or attacking, and each connection costs a socket and a buffer of up to 64 KiB.
export const DEFAULT_CONTROL_LIMITS: ControlLimits = {requestDeadlineMs: 5000, maxConnections: 16};

type Counters = {-readonly [K in keyof ControlStats]: ControlStats[K]};

export interface ControlServer {
  close(): Promise<void>;
  stats(): ControlStats;
}

/** Throws BatonError AGENT_UNREACHABLE when the socket cannot be created or another agent owns it. */
export async function startControlServer(path: string, handler: ControlHandler, log: Logger,
  limits: ControlLimits = DEFAULT_CONTROL_LIMITS): Promise<ControlServer> {
  await mkdir(dirname(path), {recursive: true, mode: 0o700});
  await removeStaleSocket(path);
  const open = new Set<Socket>();
  const stats: Counters = {refusedBusy: 0, timedOut: 0, extraRequests: 0};
  // A burst of refusals is logged once: the first after the server was last below its cap.
  let busyLogged = false;
  const server = createServer((socket) => {
    if (open.size >= limits.maxConnections) {
      stats.refusedBusy += 1;
      if (!busyLogged) {
        busyLogged = true;
        log.warning(`(control) ${open.size} connections open, the limit: refusing more until some end (refusals are counted, not logged)`);
      }
      socket.on('error', () => socket.destroy());
      socket.resume(); // what it sends is discarded, and its end seen
      reply(socket, failure('?', new BatonError('AGENT_UNREACHABLE', `the agent is already serving ${limits.maxConnections} ` +
        'control connections, its limit; try again when they have finished')), limits.requestDeadlineMs);
      return;
    }
    open.add(socket);
    // The slot is free once the agent has sent its last byte ('finish', after its end()), not only once the client
    // has closed too: a client that reads the answer and then asks again at once must not find its own old
    // connection still counted.
    const release = (): void => {
      open.delete(socket);
      if (open.size < limits.maxConnections) busyLogged = false;
    };
    socket.once('finish', release);
    socket.once('close', release);
    serve(socket, handler, log, limits, stats);
  });
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
    stats: () => ({...stats}),
  };
}

function serve(socket: Socket, handler: ControlHandler, log: Logger, limits: ControlLimits,
  stats: Counters): void {
  let buffered = '';
  let request: ControlRequest | undefined;
  let ignoreRest = false;
  const answer = (message: ControlReply): void => reply(socket, message, limits.requestDeadlineMs);
  socket.setEncoding('utf8');
  // Absolute, unlike socket.setTimeout, which every byte would reset.
  const deadline = setTimeout(() => {
    stats.timedOut += 1;
    answer(failure('?', new BatonError('BAD_REQUEST', `no complete request line within ${limits.requestDeadlineMs} ms of connecting`)));
  }, limits.requestDeadlineMs);
  socket.on('close', () => clearTimeout(deadline));
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: string) => {
    if (ignoreRest) return;
    buffered += chunk;
    if (request !== undefined) {
      refuseExtra();
      return;
    }
    const newline = buffered.indexOf('\n');
    if (newline < 0) {
      if (buffered.length > MAX_REQUEST_BYTES) {
        clearTimeout(deadline);
        ignoreRest = true;
        answer(failure('?', new BatonError('BAD_REQUEST', `request larger than ${MAX_REQUEST_BYTES} bytes`)));
      }
      return;
    }
    clearTimeout(deadline);
    const decoded = decodeRequest(buffered.slice(0, newline));
    buffered = buffered.slice(newline + 1);
    if (typeof decoded === 'string') {
      ignoreRest = true;
      answer(failure('?', new BatonError('BAD_REQUEST', decoded)));
      return;
    }
    request = decoded;
    const served = decoded;
    const refusal = protocolRefusal(served);
    if (refusal !== undefined) {
      ignoreRest = true;
      answer(failure(served.id, new BatonError('PROTOCOL_MISMATCH', refusal)));
      return;
    }
    const emit = (progress: SwitchProgress): void => {
      if (!socket.destroyed && !socket.writableEnded) socket.write(encodeLine({id: served.id, type: 'progress', protocol: CONTROL_PROTOCOL, progress}));
    };
    void handle(served, handler, emit, stats).then(answer, (error: unknown) => {
      log.error(`(control) ${served.type} failed: ${describeError(error)}`);
      answer(failure(served.id, error));
    });
    refuseExtra();
  });

  // One request per connection (control-protocol.ts): a second one, pipelined behind the first, is answered with an
  // error at once, and the first is still served. Whitespace after the first line is no request.
  function refuseExtra(): void {
    if (request === undefined) return;
    if (buffered.trim() === '') {
      buffered = ''; // nothing to keep: a client sending blank lines during a switch must not grow the buffer
      return;
    }
    ignoreRest = true;
    stats.extraRequests += 1;
    const newline = buffered.indexOf('\n');
    const second = newline < 0 ? undefined : decodeRequest(buffered.slice(0, newline));
    const id = second === undefined || typeof second === 'string' ? '?' : second.id;
    buffered = '';
    if (socket.destroyed || socket.writableEnded) return;
    socket.write(encodeLine(failure(id, new BatonError('BAD_REQUEST', `one request per connection: request ${request.id} is ` +
      `being served, so this second one is refused; send it on a new connection`))));
  }
}

async function handle(request: ControlRequest, handler: ControlHandler, emit: (progress: SwitchProgress) => void,
  stats: ControlStats): Promise<ControlReply> {
  const done = (result: ControlResult): ControlReply => ({id: request.id, type: 'result', protocol: CONTROL_PROTOCOL, ok: true, result});
  switch (request.type) {
    case 'status':
      return done({...await handler.status(), control: {...stats}});
    case 'switchover':
      return done(await handler.switchover(request.options, emit));
    case 'resume':
      return done(await handler.resume(request.peer));
    case 'fail-active':
      return done(await handler.failActive(request.seconds));
    case 'rehearsal':
      return done(await handler.rehearsalAids());
    case 'drain':
      return done(await handler.drain(request.host, emit));
  }
}

function failure(id: string, error: unknown): ControlReply {
  const code = isBatonError(error) ? error.code : 'BAD_REQUEST';
  return {id, type: 'result', protocol: CONTROL_PROTOCOL, ok: false, error: {code, message: describeError(error)}};
}

/**
 * Writes the answer and half-closes. What the client still sends is read and ignored until it closes its end (a
 * client stopped mid-write gets its answer, not a reset); one that never closes is cut `lingerMs` later, so it
 * cannot keep the connection and its slot under maxConnections.
 */
function reply(socket: Socket, answer: ControlReply, lingerMs: number): void {
  if (socket.destroyed || socket.writableEnded) return;
  socket.end(encodeLine(answer));
  const linger = setTimeout(() => socket.destroy(), lingerMs);
  socket.once('close', () => clearTimeout(linger));
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
