// One-line structured logger: journald priority prefixes under systemd, timestamps and level names otherwise.

export type LogLevel = 'error' | 'warning' | 'notice' | 'info' | 'debug';

export interface Logger {
  error(message: string): void;
  warning(message: string): void;
  notice(message: string): void;
  info(message: string): void;
  debug(message: string): void;
}

// sd-daemon(3) priorities: a line starting with <N> is stored with that priority by journald.
const PRIORITY: Record<LogLevel, number> = {error: 3, warning: 4, notice: 5, info: 6, debug: 7};

export interface LoggerOptions {
  /** True when stderr goes to journald (systemd sets JOURNAL_STREAM): prefix <N>, no timestamp (journald adds one). */
  readonly journald: boolean;
  readonly debug: boolean;
  readonly write: (line: string) => void;
  readonly wallNow: () => number;
}

export function createLogger(options: LoggerOptions): Logger {
  const emit = (level: LogLevel, message: string): void => {
    if (level === 'debug' && !options.debug) return;
    // One event, one line: a newline inside a message would split it into two journal entries.
    const oneLine = message.replaceAll('\n', ' | ');
    if (options.journald) {
      options.write(`<${PRIORITY[level]}>${oneLine}\n`);
    } else {
      options.write(`${new Date(options.wallNow()).toISOString()} ${level.padEnd(7)} ${oneLine}\n`);
    }
  };
  return {
    error: (m) => emit('error', m),
    warning: (m) => emit('warning', m),
    notice: (m) => emit('notice', m),
    info: (m) => emit('info', m),
    debug: (m) => emit('debug', m),
  };
}
