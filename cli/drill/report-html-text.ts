// Text in the drill report page: escaping what came from the hosts, and the numbers, times and coordinates as the
// page prints them (never throwing on a report read back from JSON with odd values).

/** Coordinates with at most 2 decimals: sub-pixel enough, and keeps a 20 000-probe page small. */
export function fmt(value: number): string {
  return String(Math.round(value * 100) / 100);
}

export function formatNumber(value: number, decimals: number): string {
  return Number.isFinite(value) ? value.toFixed(decimals) : '?';
}

/** A count from the report, which a report read back from JSON could have turned into anything. */
export function formatCount(value: number): string {
  return Number.isFinite(value) ? String(value) : '?';
}

export function formatRelativeS(ms: number): string {
  return `${formatNumber(ms / 1000, 3)} s`;
}

export function formatWallTime(ms: number): string {
  // Date's range is ±8.64e15 ms; beyond it toISOString throws.
  if (!Number.isFinite(ms) || Math.abs(ms) > 8.64e15) return 'unknown time';
  return `${new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, '')} UTC`;
}

/**
 * Everything from the report came from hosts or their config: escape it for text and for quoted attributes.
 * String(): a report read back from JSON is not type-checked, and a number where a name belongs must not throw.
 */
export function escapeHtml(text: string): string {
  return String(text).replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

const ESCAPES: Record<string, string> = {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', '\'': '&#39;'};

/** `backquoted` runs as <code>, as the CLI's fixes write commands. Safe only on already escaped text. */
export function withCode(escaped: string): string {
  return escaped.replace(/`([^`]+)`/g, '<code>$1</code>');
}
