// The part of host info that costs the event loop: systeminformation's version probes start ten programs, and each
// start blocks the thread that makes it (fork and exec are synchronous in libuv): 115-150 ms of a stalled loop at
// idle, over a second on a busy host, enough for the peer to miss beacons and call this host silent. Run in a
// worker thread, they stall only the worker. Loaded only inside that worker (host-info.ts starts it).

import {parentPort, workerData} from 'node:worker_threads';
import {mem, versions} from 'systeminformation';

const programs = (workerData as {programs: string}).programs;
const [found, memory] = await Promise.all([versions(programs), mem()]);
parentPort?.postMessage({found, memory: {total: memory.total, available: memory.available}});
