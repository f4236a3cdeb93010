// A Logger for unit tests that keeps every line but debug, so a test can assert on what the code said.

import type {Logger} from '../../agent/log.js';

export function keptLog(lines: string[]): Logger {
  const keep = (message: string): void => void lines.push(message);
  return {error: keep, warning: keep, notice: keep, info: keep, debug: () => undefined};
}
