// What the agent may read under its systemd unit: the user and groups it runs as, whether a capability lets it read
// past file modes, and the paths its sandbox hides. `baton check-config` and `baton install` run outside the unit,
// as a root that reads everything, so they judge the access log and the secrets through this instead.
//
// Only what decides whether a file can be *read* is modelled: ReadOnlyPaths= and ProtectSystem= leave files
// readable, so they are not. POSIX ACLs are not read either (Debian's logs do not use them).

/** Who reads the files, and what the sandbox hides from it. */
export interface FileAccess {
  readonly uid: number;
  /** The primary group and the supplementary ones. */
  readonly gids: readonly number[];
  /** CAP_DAC_OVERRIDE or CAP_DAC_READ_SEARCH: it reads any file and searches any directory whatever their modes. */
  readonly readsAnything: boolean;
  readonly hidden: readonly HiddenPath[];
  /** For messages: "root without CAP_DAC_OVERRIDE, in groups root and adm, under baton-agent.service". */
  readonly described: string;
}

/** A path the sandbox hides (an empty or private directory instead), and the setting that does it. */
export interface HiddenPath {
  readonly path: string;
  readonly by: string;
}

export interface UnitAccessLookups {
  /** uid and primary gid of a user name; undefined when unknown. */
  readonly user: (name: string) => {readonly uid: number; readonly gid: number} | undefined;
  /** gid of a group name; undefined when unknown. */
  readonly group: (name: string) => number | undefined;
}

// systemd.exec(5): ProtectHome=yes and tmpfs make these empty; read-only leaves them readable.
const HOME_PATHS = ['/home', '/root', '/run/user'];
// PrivateTmp=yes: the unit gets its own /tmp and /var/tmp; what is in the host's is out of its sight.
const TMP_PATHS = ['/tmp', '/var/tmp'];
const YES = /^(?:yes|true|on|1)$/i;
const READ_CAPABILITIES = ['CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH'];

/**
 * The file access of a service from the text of its unit and of its drop-ins, in the order systemd applies them
 * (the unit, then the drop-ins by name). Only the [Service] section is read; a list setting assigned the empty
 * string starts again, as in systemd.
 */
export function parseUnitFileAccess(texts: readonly string[], lookups: UnitAccessLookups, unitName: string): FileAccess {
  let user = 'root';
  const groups: string[] = [];
  const inaccessible: string[] = [];
  const temporary: string[] = [];
  let protectHome = '';
  let privateTmp = '';
  let bounding: CapabilitySet = {except: new Set()};
  for (const [name, value] of serviceAssignments(texts)) {
    const words = value.split(/\s+/).filter((word) => word !== '');
    switch (name) {
      case 'User':
        user = value.trim() === '' ? 'root' : value.trim();
        break;
      case 'SupplementaryGroups':
        if (words.length === 0) groups.length = 0;
        groups.push(...words);
        break;
      case 'InaccessiblePaths':
        if (words.length === 0) inaccessible.length = 0;
        inaccessible.push(...words.map((word) => word.replace(/^[-+]+/, '')));
        break;
      case 'TemporaryFileSystem':
        if (words.length === 0) temporary.length = 0;
        temporary.push(...words.map((word) => word.split(':')[0] ?? word));
        break;
      case 'ProtectHome':
        protectHome = value.trim();
        break;
      case 'PrivateTmp':
        privateTmp = value.trim();
        break;
      case 'CapabilityBoundingSet':
        bounding = applyCapabilities(bounding, value.trim());
        break;
    }
  }
  const found = user === 'root' ? {uid: 0, gid: 0} : lookups.user(user);
  // An unknown user: systemd would refuse to start the unit; judge as nobody can read anything but world-readable.
  const uid = found?.uid ?? -1;
  const gids = [found?.gid ?? -1, ...groups.map((group) => lookups.group(group) ?? -1)];
  // Only root gets its bounding set as permitted capabilities at exec; another user needs AmbientCapabilities=.
  const readsAnything = uid === 0 && READ_CAPABILITIES.some((cap) => hasCapability(bounding, cap));
  const hidden: HiddenPath[] = [
    ...(/^(?:tmpfs)$/i.test(protectHome) || YES.test(protectHome)
      ? HOME_PATHS.map((path) => ({path, by: `ProtectHome=${protectHome}`})) : []),
    ...(YES.test(privateTmp) ? TMP_PATHS.map((path) => ({path, by: `PrivateTmp=${privateTmp}`})) : []),
    ...inaccessible.map((path) => ({path, by: `InaccessiblePaths=${path}`})),
    ...temporary.map((path) => ({path, by: `TemporaryFileSystem=${path}`})),
  ];
  const groupNames = [user === 'root' ? 'root' : `${user}'s group`, ...groups];
  const described = `${user}${uid === 0 && !readsAnything ? ' without CAP_DAC_OVERRIDE' : ''}, in groups ` +
    `${listWords(groupNames)}, under ${unitName}`;
  return {uid, gids, readsAnything, hidden, described};
}

/** The setting that hides `path` from the service, if one does. */
export function hiddenBy(access: FileAccess, path: string): HiddenPath | undefined {
  return access.hidden.find((hidden) => path === hidden.path || path.startsWith(`${hidden.path}/`));
}

/** What `stat` says of a file or directory, with the owner's and group's names where they have one. */
export interface FileFacts {
  readonly kind: 'file' | 'directory' | 'other';
  readonly uid: number;
  readonly gid: number;
  /** st_mode; only the permission bits are looked at. */
  readonly mode: number;
  readonly owner: string | undefined;
  readonly group: string | undefined;
}

/**
 * Why `access` cannot read the file at the end of `chain` (every directory from / down, then the file), undefined
 * when it can: each directory must be searchable (x) and the file readable (r) by its owner, group or other bits,
 * the first that applies, as the kernel decides for a process without CAP_DAC_OVERRIDE.
 */
export function whyUnreadable(access: FileAccess, chain: readonly {readonly path: string; readonly facts: FileFacts}[]): string | undefined {
  if (access.readsAnything) return undefined;
  for (const [index, {path, facts}] of chain.entries()) {
    const isTarget = index === chain.length - 1;
    const bit = isTarget ? 0o4 : 0o1;
    const shift = facts.uid === access.uid ? 6 : access.gids.includes(facts.gid) ? 3 : 0;
    if ((facts.mode >> shift) & bit) continue;
    return `${isTarget ? '' : 'the directory '}${path} is ${describeOwnership(facts)}, which does not let it ` +
      `${isTarget ? 'read it' : 'pass through'}`;
  }
  return undefined;
}

/** `www-data:adm 0640`. */
export function describeOwnership(facts: FileFacts): string {
  return `${facts.owner ?? facts.uid}:${facts.group ?? facts.gid} ${(facts.mode & 0o7777).toString(8).padStart(4, '0')}`;
}

/** `a`, `a and b`, `a, b and c`. */
function listWords(words: readonly string[]): string {
  return words.length < 2 ? words.join('') : `${words.slice(0, -1).join(', ')} and ${words.at(-1)}`;
}

/** The `Name=value` lines of every [Service] section, in order. */
function serviceAssignments(texts: readonly string[]): Array<[string, string]> {
  const assignments: Array<[string, string]> = [];
  for (const text of texts) {
    let inService = false;
    for (const raw of text.split('\n')) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
      if (line.startsWith('[')) {
        inService = line === '[Service]';
        continue;
      }
      const equals = line.indexOf('=');
      if (inService && equals > 0) assignments.push([line.slice(0, equals).trim(), line.slice(equals + 1)]);
    }
  }
  return assignments;
}

/** The bounding set so far: every capability but some (systemd's default), or only some. */
type CapabilitySet = {readonly except: ReadonlySet<string>} | {readonly only: ReadonlySet<string>};

function hasCapability(set: CapabilitySet, name: string): boolean {
  return 'except' in set ? !set.except.has(name) : set.only.has(name);
}

/**
 * CapabilityBoundingSet= applied to the set so far (systemd.exec(5)): a list replaces the default of every
 * capability and adds to an earlier list, a `~` list takes its capabilities out, the empty string empties it.
 */
function applyCapabilities(current: CapabilitySet, value: string): CapabilitySet {
  if (value === '') return {only: new Set()};
  const names = value.replace(/^~/, '').split(/\s+/).filter((name) => name !== '').map((name) => name.toUpperCase());
  if (value.startsWith('~')) {
    return 'except' in current ? {except: new Set([...current.except, ...names])}
      : {only: new Set([...current.only].filter((name) => !names.includes(name)))};
  }
  return 'except' in current ? {only: new Set(names)} : {only: new Set([...current.only, ...names])};
}
