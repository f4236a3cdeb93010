// The real Clock: performance.now() for intervals (monotonic), Date.now() only for wall-clock fields.

import {performance} from 'node:perf_hooks';
import {setTimeout as delay} from 'node:timers/promises';
import type {Clock} from '../ports.js';

export function createSystemClock(): Clock {
  return {
    now: () => performance.now(),
    wallNow: () => Date.now(),
    sleep: async (ms, signal) => {
      await delay(ms, undefined, signal ? {signal} : undefined);
    },
  };
}
