// The part of host info that costs the event loop, run in a short-lived child process (host-info.ts forks it for
// each collection): systeminformation's version probes start ten programs, and each start blocks the thread that
// makes it (fork and exec are synchronous in libuv): 115-150 ms of a stalled loop at idle, over a second on a busy
// host, enough for the peer to miss beacons and call this host silent. Here they stall only this process, and
// systeminformation's module and heap, and the malloc arenas its probes leave, end with it instead of staying in the
// agent (a worker thread's did: +5 MB of the agent's RSS after its first switchover, for good).
//
// argv[2]: the programs, comma-separated. The answer goes back over the IPC channel; run by hand, to stdout.

import {mem, versions} from 'systeminformation';

const [found, memory] = await Promise.all([versions(process.argv[2] ?? ''), mem()]);
const answer = {found, memory: {total: memory.total, available: memory.available}};
if (process.send) process.send(answer);
else console.log(JSON.stringify(answer));
