// Text the peer wrote (its error messages, a finish reason, strings in a result) made safe to show and pass on:
// logs, hook arguments, the CLI and status never get a raw control character or terminal escape from the peer.
//
// A key holder, or a peer agent quoting a hostile command's stderr, can put anything in these strings; a terminal
// that is shown "\x1b[2J" clears the screen, a "\n" in a log line forges the next line. Each such character is
// replaced by a visible escape, so the text keeps what it said and loses only the power to act.

// The longest reason or message shown: longer than any baton writes (a failed command's message names the command
// line and stderr's first line, well under 500), short enough for one log line.
export const MAX_PEER_TEXT = 600;

// C0 controls, DEL and C1 controls (U+0080..U+009F: 8-bit CSI U+009B starts an escape sequence on some
// terminals), the Unicode line and paragraph separators, which some log viewers break lines on, and the
// bidirectional overrides and isolates, which make a terminal show text in another order than it is.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/gu;

/**
 * Pure: `text` with each control character written as a visible escape (`\x1b`, `\n`, `\u2028`), cut to
 * `maxChars` characters with "…" when longer. An ESC sequence loses its ESC, so `\x1b[2J` shows as the text
 * `\x1b[2J` and does nothing.
 */
export function sanitizePeerText(text: string, maxChars = MAX_PEER_TEXT): string {
  const escaped = text.replace(UNSAFE, escapeChar);
  return escaped.length <= maxChars ? escaped : `${escaped.slice(0, maxChars - 1)}…`;
}

/**
 * Pure: a JSON value from the peer with every string in it (keys included) escaped as sanitizePeerText does, but not
 * cut: a result's strings are data (a dry run's command lines), and the datagram's size already bounds them.
 */
export function sanitizePeerJson<T>(value: T): T {
  if (typeof value === 'string') return sanitizePeerText(value, Number.POSITIVE_INFINITY) as T;
  if (Array.isArray(value)) return value.map((item: unknown) => sanitizePeerJson(item)) as T;
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [sanitizePeerText(key, Number.POSITIVE_INFINITY), sanitizePeerJson(item)])) as T;
  }
  return value;
}

function escapeChar(char: string): string {
  switch (char) {
    case '\n': return '\\n';
    case '\r': return '\\r';
    case '\t': return '\\t';
    default: {
      const code = char.codePointAt(0) ?? 0;
      return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
    }
  }
}
