// A test's client of a server socket: raw bytes in, everything the server answered before it closed out.

import {createConnection, type NetConnectOpts} from 'node:net';

/** Sends `data` to a unix socket path or a TCP address; resolves with all the server wrote before closing. */
export function rawExchange(to: string | {readonly host: string; readonly port: number}, data: string): Promise<string> {
  const options: NetConnectOpts = typeof to === 'string' ? {path: to} : {host: to.host, port: to.port};
  return new Promise((resolve, reject) => {
    const socket = createConnection(options);
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(data));
    socket.on('data', (chunk: string) => {
      answer += chunk;
    });
    socket.on('close', () => resolve(answer));
    socket.on('error', reject);
  });
}
