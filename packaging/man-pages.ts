// The Debian package's man pages, made at package time from what they describe so they cannot drift: baton(8) and
// baton-agent(8) from the programs' own --help, baton.yaml(5) from docs/configuration.md's key tables.

/** What a page says besides the text it is made from. */
export interface ManPage {
  /** `baton`, `baton-agent`, `baton.yaml`. */
  readonly name: string;
  readonly section: 5 | 8;
  /** One line for NAME (`baton \- …`). */
  readonly summary: string;
  /** `baton 0.1.0`: the package's name and version, in the page's footer. */
  readonly source: string;
  /** YYYY-MM-DD. */
  readonly date: string;
  readonly files: readonly (readonly [string, string])[];
  readonly seeAlso: readonly string[];
}

// man-pages(7): section 8 is system administration, 5 file formats.
const MANUAL_OF_SECTION = {5: 'File Formats', 8: 'System Administration'} as const;
// A heading of a --help text: "Commands:", "Exit status: 0 done, …": one or two words, a capital first, a colon, not
// indented ("The baton agent: one runs…" is a sentence).
const HELP_HEADING = /^([A-Z][a-z]+(?: [a-z]+)?):(?:\s+(.*))?$/;

/**
 * A page from a --help text: the "Usage:" line is the SYNOPSIS, the text before the first heading the DESCRIPTION,
 * and each heading ("Commands:", "Options:", "Exit status:", "Signals:") a section of its own. Indented lines are
 * kept as they are (tables of options), unindented lines run together as paragraphs.
 */
export function renderHelpPage(page: ManPage, help: string): string {
  const lines = help.trimEnd().split('\n');
  const usage = /^Usage:\s+(.*)$/.exec(lines[0] ?? '');
  if (usage === null) throw new Error(`${page.name} --help does not start with "Usage:": ${JSON.stringify(lines[0])}`);
  const sections: {title: string; lines: string[]}[] = [{title: 'DESCRIPTION', lines: []}];
  for (const line of lines.slice(1)) {
    const heading = HELP_HEADING.exec(line);
    if (heading === null) {
      sections.at(-1)?.lines.push(line);
      continue;
    }
    sections.push({title: (heading[1] ?? '').toUpperCase(), lines: heading[2] === undefined ? [] : [heading[2]]});
  }
  const out = [...header(page), '.SH SYNOPSIS', `.B ${roffText(usage[1] ?? '')}`];
  for (const {title, lines: body} of sections) {
    if (body.every((line) => line.trim() === '')) continue;
    out.push(`.SH ${title}`, ...helpBody(body));
  }
  out.push(...footer(page));
  return `${out.join('\n')}\n`;
}

/** Paragraphs (unindented lines, filled) and verbatim blocks (indented lines, as they are). */
function helpBody(lines: readonly string[]): string[] {
  const out: string[] = [];
  let mode: 'none' | 'fill' | 'verbatim' = 'none';
  for (const line of lines) {
    if (line.trim() === '') {
      if (mode === 'verbatim') out.push('.fi');
      mode = 'none';
      continue;
    }
    const indented = /^\s/.test(line);
    if (indented && mode !== 'verbatim') {
      out.push('.PP', '.nf');
      mode = 'verbatim';
    } else if (!indented && mode !== 'fill') {
      if (mode === 'verbatim') out.push('.fi');
      out.push('.PP');
      mode = 'fill';
    }
    out.push(indented ? roffText(line) : roffText(line.trim()));
  }
  if (mode === 'verbatim') out.push('.fi');
  return out;
}

/** One row of a key table: `| \`key\` | default | what |`. */
export interface KeyRow {
  readonly key: string;
  readonly defaultValue: string;
  readonly what: string;
}

/**
 * The rows of every table under `## Keys` in docs/configuration.md (until the next `## `), in order. Throws when
 * there are none: a page without its keys must not be packaged.
 */
export function parseKeyTables(markdown: string): KeyRow[] {
  const start = markdown.indexOf('\n## Keys');
  if (start < 0) throw new Error('docs/configuration.md has no "## Keys" section');
  const end = markdown.indexOf('\n## ', start + 1);
  const section = markdown.slice(start, end < 0 ? undefined : end);
  const rows: KeyRow[] = [];
  for (const line of section.split('\n')) {
    const cells = /^\| `([^`]+)` \|(.*)\|$/.exec(line);
    if (cells === null) continue;
    // Cells are split at a pipe that is not inside backquotes (a default like `a | b` stays whole).
    const [defaultValue = '', ...what] = splitCells(cells[2] ?? '');
    rows.push({key: cells[1] ?? '', defaultValue: defaultValue.trim(), what: what.join('|').trim()});
  }
  if (rows.length === 0) throw new Error('docs/configuration.md: no rows in the "## Keys" tables');
  return rows;
}

function splitCells(text: string): string[] {
  const cells = [''];
  let inCode = false;
  for (const char of text) {
    if (char === '`') inCode = !inCode;
    if (char === '|' && !inCode) cells.push('');
    else cells[cells.length - 1] += char;
  }
  return cells;
}

/**
 * baton.yaml(5): the lead paragraphs and the example of docs/configuration.md, then each key of its tables with
 * its default and what is checked.
 */
export function renderConfigPage(page: ManPage, markdown: string): string {
  const intro = markdown.slice(markdown.indexOf('\n') + 1, markdown.indexOf('\n## ')).trim().split(/\n\s*\n/);
  const example = /## Example\s+```yaml\n([\s\S]*?)```/.exec(markdown)?.[1];
  if (example === undefined) throw new Error('docs/configuration.md has no yaml block under "## Example"');
  const out = [...header(page), '.SH SYNOPSIS', '.B /etc/baton/baton.yaml', '.SH DESCRIPTION'];
  for (const paragraph of intro) {
    const code = /^```\w*\n([\s\S]*?)\n?```$/.exec(paragraph);
    out.push('.PP', ...(code === null ? [markdownInline(paragraph.replace(/\s*\n\s*/g, ' '))]
      : ['.nf', ...(code[1] ?? '').split('\n').map(roffText), '.fi']));
  }
  out.push('.SH EXAMPLE', '.PP', '.nf', ...example.trimEnd().split('\n').map(roffText), '.fi', '.SH KEYS');
  for (const row of parseKeyTables(markdown)) {
    out.push('.TP', `.B ${roffText(row.key)}`, `Default: ${markdownInline(row.defaultValue)}.`, '.br',
      markdownInline(row.what));
  }
  out.push(...footer(page));
  return `${out.join('\n')}\n`;
}

function header(page: ManPage): string[] {
  return [
    `.\\" ${page.name}(${page.section}), generated by \`npm run package\` (packaging/man-pages.ts); do not edit.`,
    `.TH ${roffText(page.name.toUpperCase())} ${page.section} ${page.date} "${roffText(page.source)}" ` +
      `"${MANUAL_OF_SECTION[page.section]}"`,
    '.SH NAME',
    `${roffText(page.name)} \\- ${roffText(page.summary)}`,
  ];
}

function footer(page: ManPage): string[] {
  const out: string[] = [];
  if (page.files.length > 0) {
    out.push('.SH FILES');
    for (const [path, what] of page.files) out.push('.TP', `.I ${roffText(path)}`, roffText(what));
  }
  if (page.seeAlso.length > 0) out.push('.SH SEE ALSO', page.seeAlso.map(seeAlsoEntry).join(',\n'));
  return out;
}

/** `baton-agent(8)` in bold with its section; a path as it is. */
function seeAlsoEntry(reference: string): string {
  const manual = /^([\w.-]+)\((\d)\)$/.exec(reference);
  return manual === null ? roffText(reference) : `.BR ${roffText(manual[1] ?? '')} (${manual[2]})`;
}

/**
 * Plain text made safe for roff: backslashes, minus signs (a hyphen in an option must stay `-`, not become a
 * typographic hyphen), control characters at the start of a line, and characters outside ASCII as groff's
 * \[uXXXX], so the page renders the same whatever the locale (man-db runs preconv, groff alone may not).
 */
export function roffText(text: string): string {
  const escaped = text.replaceAll('\\', '\\e').replaceAll('-', '\\-')
    .replace(/[^\x20-\x7e]/gu, (char) => `\\[u${(char.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}]`);
  return /^[.']/.test(escaped) ? `\\&${escaped}` : escaped;
}

/** Markdown's inline marks in a table cell or paragraph: `code` in bold, links as their text, **strong** in bold. */
function markdownInline(text: string): string {
  const linked = text.replace(/\[([^\]]+)\]\([^)]+\)/g, '$1');
  return linked.split(/(`[^`]*`)/).map((part) => part.startsWith('`') && part.endsWith('`') && part.length >= 2
    ? `\\fB${roffText(part.slice(1, -1))}\\fR`
    : roffText(part).replace(/\*\*([^*]+)\*\*/g, '\\fB$1\\fR')).join('');
}
