// The lab's transfers in flight, shared by its servers (web.ts, tiny-web.ts) and its clients (clients.ts): 1 MiB at
// 256 KiB/s, downloaded from GET /download or uploaded with PUT /upload/NAME, so a transfer is still under way when
// the IP moves; the pace both the built-in server's downloads and the clients' uploads keep; and what an upload's
// answer must say to count. Node built-ins only: tiny-web.js and clients.js run without the project's packages.

import type {Writable} from 'node:stream';

/** What one transfer moves, either way. */
export const TRANSFER_BYTES = 1024 * 1024;
/** 256 KiB/s: a 1 MiB transfer lasts 4 s, a slow client's pace. */
export const TRANSFER_RATE_BYTES_PER_S = 256 * 1024;
export const DOWNLOAD_PATH = '/download';
/** Uploads go to UPLOAD_PREFIX + a name of upload-name characters; each server stores or discards them there. */
export const UPLOAD_PREFIX = '/upload/';
/** Twice a transfer: the servers refuse a larger body (413), so nothing bigger is written to the lab's disk. */
export const UPLOAD_MAX_BODY_BYTES = 2 * TRANSFER_BYTES;
/**
 * The body bytes the server received, which every lab server puts on its answer to an upload: the built-in server
 * counts them; nginx's and Apache's WebDAV answer a PUT only after they have read Content-Length bytes into the file
 * (a shorter body is an error, never a 2xx), so they repeat the declared length on their 2xx.
 */
export const RECEIVED_BYTES_HEADER = 'X-Received-Bytes';
// 16 KiB every 62.5 ms is 256 KiB/s: chunks small enough that the pace is even over a 4 s transfer.
const CHUNK_BYTES = 16 * 1024;

export interface PacedBody {
  /** The size of each write, in order; their sum is the total. */
  readonly chunks: readonly number[];
  /** The time between two writes, the first one included (it is sent one interval after the start). */
  readonly intervalMs: number;
}

/** Pure: how `totalBytes` are sent at `rateBytesPerS`, in chunks of at most `chunkBytes`. */
export function planPacedBody(totalBytes: number, rateBytesPerS: number, chunkBytes = CHUNK_BYTES): PacedBody {
  if (!(totalBytes >= 0 && rateBytesPerS > 0 && chunkBytes > 0)) {
    throw new RangeError(`planPacedBody: expected bytes >= 0 and a positive rate and chunk, got ${totalBytes}, ${rateBytesPerS}, ${chunkBytes}`);
  }
  const chunks: number[] = [];
  for (let sent = 0; sent < totalBytes; sent += chunkBytes) chunks.push(Math.min(chunkBytes, totalBytes - sent));
  return {chunks, intervalMs: (chunkBytes * 1000) / rateBytesPerS};
}

/**
 * Writes TRANSFER_BYTES of `fill` to `out` at TRANSFER_RATE_BYTES_PER_S and ends it after the last chunk. Stops
 * writing, and says nothing, once `out` is destroyed: the peer went away, which the request's or response's own
 * error and close events report. Returns a function that stops it early.
 */
export function sendPacedBody(out: Writable, fill: number): () => void {
  const {chunks, intervalMs} = planPacedBody(TRANSFER_BYTES, TRANSFER_RATE_BYTES_PER_S);
  const block = Buffer.alloc(Math.max(0, ...chunks), fill);
  let next = 0;
  const timer = setInterval(() => {
    const size = chunks[next];
    next += 1;
    if (out.destroyed || size === undefined) {
      clearInterval(timer);
      return;
    }
    if (next === chunks.length) {
      clearInterval(timer);
      out.end(block.subarray(0, size));
    } else {
      out.write(block.subarray(0, size));
    }
  }, intervalMs);
  return () => clearInterval(timer);
}
