/**
 * Apple's device-management schema (`../shared/fixtures/apple-device-management`, read at run time,
 * never copied) as a judge of plist values: what haishin sends (commands, enrollment profiles) and
 * what its simulated iPad answers are checked against the `payloadkeys` / `responsekeys` trees of
 * Apple's YAML files.
 *
 * A YAML file describes one command, check-in message or profile payload:
 * `payload.requesttype` (commands, check-ins) or `payload.payloadtype` (profiles), and a tree of keys,
 * each with `key`, `type` (`<string>`, `<integer>`, `<real>`, `<boolean>`, `<data>`, `<date>`,
 * `<array>`, `<dictionary>`, `<any>`), `presence` (required/optional), optional `rangelist` (allowed
 * values), `range` (min/max), `format` (a regular expression), `repetition` (array length),
 * `supportedOS` (per-OS availability: `introduced: n/a` means never on that OS; `userenrollment` and
 * `sharedipad` modes) and `subkeys`:
 * - for a `<dictionary>`: its keys; a key named `ANY` or `ANY …` stands for any key name;
 * - for an `<array>`: the item (several subkeys = alternatives, as in Settings);
 * - for a `<string>` (DeviceInformation's Queries items): the allowed values, one key per value.
 * The YAML uses anchors and aliases (some recursive), so the key tree is a graph; validation walks
 * the value, never the schema, and always terminates.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { PlistReal } from '../../src/mdm/plist.ts';

export const APPLE_SCHEMA_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../../shared/fixtures/apple-device-management',
);

export const SCHEMA_TYPES = [
  '<string>',
  '<integer>',
  '<real>',
  '<boolean>',
  '<data>',
  '<date>',
  '<array>',
  '<dictionary>',
  '<any>',
] as const;
export type SchemaType = (typeof SCHEMA_TYPES)[number];

export type Os = 'iOS' | 'macOS' | 'tvOS' | 'visionOS' | 'watchOS';

/** One OS's entry of `supportedOS` (only the fields validation uses are typed). */
export interface OsSupport {
  introduced?: string;
  deprecated?: string;
  removed?: string;
  userenrollment?: { mode?: string };
  sharedipad?: { mode?: string };
}

export interface SchemaKey {
  key: string;
  type: SchemaType;
  presence?: 'required' | 'optional';
  rangelist?: readonly (string | number | boolean)[];
  range?: { min?: number; max?: number };
  format?: string;
  repetition?: { min?: number; max?: number };
  supportedOS?: Partial<Record<Os, OsSupport>>;
  subkeys?: readonly SchemaKey[];
}

export interface SchemaFile {
  /** Path relative to {@link APPLE_SCHEMA_DIR}. */
  file: string;
  title: string;
  payload: {
    requesttype?: string;
    payloadtype?: string;
    supportedOS?: Partial<Record<Os, OsSupport>>;
  };
  payloadkeys: readonly SchemaKey[];
  /** Absent when the command has no response keys beyond the common ones. */
  responsekeys?: readonly SchemaKey[];
}

// ---------------------------------------------------------------------------------------------
// Loading

const cache = new Map<string, SchemaFile>();

/** Loads one YAML file, e.g. `mdm/commands/application.install.yaml`; throws on an unexpected shape. */
export function loadSchema(file: string): SchemaFile {
  const cached = cache.get(file);
  if (cached) return cached;
  const text = readFileSync(path.join(APPLE_SCHEMA_DIR, file), 'utf8');
  // Apple's own files: aliases are part of the format (some files use hundreds), not an attack.
  const raw: unknown = parse(text, { maxAliasCount: -1 });
  if (!isRecord(raw)) throw new Error(`${file}: not a YAML mapping`);
  const payload = raw.payload;
  if (!isRecord(payload)) throw new Error(`${file}: no payload section`);
  const converted = new Map<object, SchemaKey[]>();
  const schema: SchemaFile = {
    file,
    title: typeof raw.title === 'string' ? raw.title : file,
    payload: {
      ...(typeof payload.requesttype === 'string' ? { requesttype: payload.requesttype } : {}),
      ...(typeof payload.payloadtype === 'string' ? { payloadtype: payload.payloadtype } : {}),
      ...(isRecord(payload.supportedOS) ? { supportedOS: toSupportedOs(payload.supportedOS) } : {}),
    },
    payloadkeys:
      raw.payloadkeys === undefined ? [] : toKeys(raw.payloadkeys, `${file}:payloadkeys`, converted),
    ...(raw.responsekeys === undefined
      ? {}
      : { responsekeys: toKeys(raw.responsekeys, `${file}:responsekeys`, converted) }),
  };
  cache.set(file, schema);
  return schema;
}

/** Every YAML file of a folder (`mdm/commands`, `mdm/checkin`, `mdm/profiles`). */
export function loadSchemaDir(dir: string): SchemaFile[] {
  return readdirSync(path.join(APPLE_SCHEMA_DIR, dir))
    .filter((name) => name.endsWith('.yaml'))
    .sort()
    .map((name) => loadSchema(`${dir}/${name}`));
}

/** The command schema whose `payload.requesttype` is `requestType`. */
export function commandSchema(requestType: string): SchemaFile {
  return bySingle(loadSchemaDir('mdm/commands'), (s) => s.payload.requesttype === requestType, requestType);
}

/** The check-in message schema whose `payload.requesttype` is `messageType`. */
export function checkinSchema(messageType: string): SchemaFile {
  return bySingle(loadSchemaDir('mdm/checkin'), (s) => s.payload.requesttype === messageType, messageType);
}

/** The profile payload schema whose `payload.payloadtype` is `payloadType` (`TopLevel` for the envelope). */
export function profileSchema(payloadType: string): SchemaFile {
  // Most files are named after their PayloadType; the scan is the fallback.
  if (existsSync(path.join(APPLE_SCHEMA_DIR, `mdm/profiles/${payloadType}.yaml`))) {
    const direct = loadSchema(`mdm/profiles/${payloadType}.yaml`);
    if (direct.payload.payloadtype === payloadType) return direct;
  }
  return bySingle(loadSchemaDir('mdm/profiles'), (s) => s.payload.payloadtype === payloadType, payloadType);
}

function bySingle(all: SchemaFile[], match: (s: SchemaFile) => boolean, what: string): SchemaFile {
  const found = all.filter(match);
  if (found.length !== 1) {
    throw new Error(`expected one Apple schema file for ${what}, found ${found.length}`);
  }
  return found[0]!;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function toSupportedOs(raw: Record<string, unknown>): Partial<Record<Os, OsSupport>> {
  const out: Partial<Record<Os, OsSupport>> = {};
  for (const os of ['iOS', 'macOS', 'tvOS', 'visionOS', 'watchOS'] as const) {
    const entry = raw[os];
    if (!isRecord(entry)) continue;
    const support: OsSupport = {};
    // YAML reads `introduced: 4.2.6` as a string but `introduced: 5.0` can be quoted or not.
    for (const field of ['introduced', 'deprecated', 'removed'] as const) {
      const value = entry[field];
      if (typeof value === 'string' || typeof value === 'number') support[field] = String(value);
    }
    for (const field of ['userenrollment', 'sharedipad'] as const) {
      const value = entry[field];
      if (isRecord(value) && typeof value.mode === 'string') support[field] = { mode: value.mode };
    }
    out[os] = support;
  }
  return out;
}

function isSchemaType(v: unknown): v is SchemaType {
  return typeof v === 'string' && (SCHEMA_TYPES as readonly string[]).includes(v);
}

function toKeys(raw: unknown, where: string, converted: Map<object, SchemaKey[]>): SchemaKey[] {
  if (!Array.isArray(raw)) throw new Error(`${where}: expected a list of keys`);
  const done = converted.get(raw);
  if (done) return done;
  const out: SchemaKey[] = [];
  // Registered before the children are converted: a recursive alias finds this (growing) list.
  converted.set(raw, out);
  for (const item of raw as unknown[]) {
    if (!isRecord(item) || typeof item.key !== 'string') throw new Error(`${where}: a key without a name`);
    const at = `${where}.${item.key}`;
    if (!isSchemaType(item.type)) throw new Error(`${at}: unknown type ${String(item.type)}`);
    const key: SchemaKey = { key: item.key, type: item.type };
    if (item.presence === 'required' || item.presence === 'optional') key.presence = item.presence;
    if (Array.isArray(item.rangelist)) {
      key.rangelist = (item.rangelist as unknown[]).map((v) => {
        if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
        throw new Error(`${at}: unexpected rangelist value ${String(v)}`);
      });
    }
    if (isRecord(item.range)) {
      key.range = {
        ...(typeof item.range.min === 'number' ? { min: item.range.min } : {}),
        ...(typeof item.range.max === 'number' ? { max: item.range.max } : {}),
      };
    }
    if (typeof item.format === 'string') key.format = item.format;
    if (isRecord(item.repetition)) {
      key.repetition = {
        ...(typeof item.repetition.min === 'number' ? { min: item.repetition.min } : {}),
        ...(typeof item.repetition.max === 'number' ? { max: item.repetition.max } : {}),
      };
    }
    if (isRecord(item.supportedOS)) key.supportedOS = toSupportedOs(item.supportedOS);
    if (item.subkeys !== undefined) key.subkeys = toKeys(item.subkeys, at, converted);
    out.push(key);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Validation

/** Who is talking: keys Apple says that device never sends or reads are reported, required ones demanded. */
export interface Context {
  /** Keys whose `supportedOS.<os>` says `introduced: n/a` (or removed) are reported as problems. */
  os?: Os;
  /** Keys introduced after this version are not demanded even when `presence: required`. */
  osVersion?: string;
  /** A User Enrollment (haishin does device enrollment only): default false. */
  userEnrollment?: boolean;
  /** A Shared iPad: keys with `sharedipad.mode: required` only apply there. Default false. */
  sharedIpad?: boolean;
  /**
   * Keys (by name) that Apple marks `required` but that are legitimately absent, with the reason.
   * Each use is a documented exception, not a silent one.
   */
  notRequired?: Readonly<Record<string, string>>;
}

export interface Problem {
  /** Where in the value: `Command.Options.PurchaseMethod`, `Users[0].FullName`. */
  path: string;
  message: string;
}

export function formatProblems(problems: readonly Problem[]): string {
  return problems.map((p) => `${p.path || '(top level)'}: ${p.message}`).join('\n');
}

/** Validates a dictionary against a list of keys (a file's `payloadkeys`, `responsekeys`, …). */
export function validateDict(
  value: unknown,
  keys: readonly SchemaKey[],
  context: Context = {},
  at = '',
): Problem[] {
  const problems: Problem[] = [];
  checkDict(value, keys, context, at, problems);
  return problems;
}

/**
 * The keys of a command's `Command` dictionary: `RequestType` (which Apple's files keep in
 * `payload.requesttype`) and the `payloadkeys`.
 */
export function commandKeys(schema: SchemaFile): SchemaKey[] {
  const requestType = schema.payload.requesttype;
  if (!requestType) throw new Error(`${schema.file} is not a command`);
  return [
    { key: 'RequestType', type: '<string>', presence: 'required', rangelist: [requestType] },
    ...schema.payloadkeys,
  ];
}

/**
 * The keys every command response may carry, whatever the command (Apple documents them once, for
 * all responses, outside the per-command YAML): the status, the channel and the ErrorChain.
 */
export const RESPONSE_ENVELOPE_KEYS: readonly SchemaKey[] = [
  {
    key: 'Status',
    type: '<string>',
    presence: 'required',
    rangelist: ['Acknowledged', 'Error', 'CommandFormatError', 'Idle', 'NotNow'],
  },
  { key: 'CommandUUID', type: '<string>', presence: 'optional' },
  { key: 'UDID', type: '<string>', presence: 'optional' },
  { key: 'EnrollmentID', type: '<string>', presence: 'optional' },
  { key: 'EnrollmentUserID', type: '<string>', presence: 'optional' },
  { key: 'UserID', type: '<string>', presence: 'optional' },
  { key: 'UserShortName', type: '<string>', presence: 'optional' },
  {
    key: 'UserLongName',
    type: '<string>',
    presence: 'optional',
    supportedOS: { iOS: { introduced: 'n/a' } },
  },
  {
    key: 'NotOnConsole',
    type: '<boolean>',
    presence: 'optional',
    supportedOS: { iOS: { introduced: 'n/a' } },
  },
  {
    key: 'ErrorChain',
    type: '<array>',
    presence: 'optional',
    subkeys: [
      {
        key: 'ErrorChainItem',
        type: '<dictionary>',
        subkeys: [
          { key: 'ErrorCode', type: '<integer>', presence: 'required' },
          { key: 'ErrorDomain', type: '<string>', presence: 'required' },
          { key: 'LocalizedDescription', type: '<string>', presence: 'required' },
          { key: 'USEnglishDescription', type: '<string>', presence: 'optional' },
        ],
      },
    ],
  },
];

/** The keys of a device's report to a command: the common envelope and the command's `responsekeys`. */
export function responseKeys(schema: SchemaFile): SchemaKey[] {
  return [...RESPONSE_ENVELOPE_KEYS, ...(schema.responsekeys ?? [])];
}

/** Whether the whole command / message / payload exists on an OS (`payload.supportedOS`). */
export function availableOn(schema: SchemaFile, os: Os): boolean {
  const support = schema.payload.supportedOS?.[os];
  return support !== undefined && support.introduced !== 'n/a';
}

export function isWildcard(key: SchemaKey): boolean {
  return key.key === 'ANY' || key.key.startsWith('ANY ');
}

/** Why a key does not exist for this device, or null when it does. */
export function unavailableReason(key: SchemaKey, context: Context): string | null {
  if (!context.os) return null;
  const support = key.supportedOS?.[context.os];
  if (!support) return null;
  if (support.introduced === 'n/a') return `not available on ${context.os} (Apple: introduced n/a)`;
  if (support.removed && context.osVersion && compareVersions(context.osVersion, support.removed) >= 0) {
    return `removed in ${context.os} ${support.removed}`;
  }
  if (context.userEnrollment && support.userenrollment?.mode === 'forbidden') {
    return 'forbidden in a User Enrollment';
  }
  if (context.sharedIpad && support.sharedipad?.mode === 'forbidden') return 'forbidden on a Shared iPad';
  return null;
}

/** Whether a `presence: required` key must be there for this device. */
function requiredHere(key: SchemaKey, context: Context): boolean {
  if (key.presence !== 'required' || isWildcard(key)) return false;
  if (context.notRequired?.[key.key] !== undefined) return false;
  if (unavailableReason(key, context) !== null) return false;
  const support = context.os ? key.supportedOS?.[context.os] : undefined;
  if (support?.userenrollment?.mode === 'required' && !context.userEnrollment) return false;
  if (support?.sharedipad?.mode === 'required' && !context.sharedIpad) return false;
  if (
    support?.introduced &&
    context.osVersion &&
    /^\d/.test(support.introduced) &&
    compareVersions(context.osVersion, support.introduced) < 0
  ) {
    return false;
  }
  return true;
}

export function compareVersions(a: string, b: string): number {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

type Kind = Exclude<SchemaType, '<any>'>;

function kindOf(value: unknown): Kind | null {
  if (typeof value === 'string') return '<string>';
  if (typeof value === 'boolean') return '<boolean>';
  if (typeof value === 'bigint') return '<integer>';
  // Our writer sends an integral number as <integer> and any other number as <real>.
  if (typeof value === 'number') return Number.isInteger(value) ? '<integer>' : '<real>';
  if (value instanceof PlistReal) return '<real>';
  if (value instanceof Uint8Array) return '<data>';
  if (value instanceof Date) return '<date>';
  if (Array.isArray(value)) return '<array>';
  if (isRecord(value) && Object.getPrototypeOf(value) === Object.prototype) return '<dictionary>';
  if (isRecord(value) && Object.getPrototypeOf(value) === null) return '<dictionary>';
  return null;
}

function show(value: unknown): string {
  const kind = kindOf(value);
  if (kind === '<string>') return `a string ${JSON.stringify(value)}`;
  if (kind === '<integer>' || kind === '<boolean>') return `${kind} ${String(value)}`;
  if (value instanceof PlistReal) return `<real> ${value.value}`;
  if (kind === '<real>') return `<real> ${String(value)}`;
  if (kind === '<data>') return `<data> of ${(value as Uint8Array).byteLength} bytes`;
  if (kind === '<date>') return `<date> ${(value as Date).toISOString()}`;
  if (kind === '<array>') return `<array> of ${(value as unknown[]).length}`;
  if (kind === '<dictionary>') return '<dictionary>';
  return `a JavaScript ${value === null ? 'null' : typeof value} (not a plist value)`;
}

function numeric(value: unknown): number | null {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  if (value instanceof PlistReal) return value.value;
  return null;
}

function join(at: string, key: string): string {
  return at === '' ? key : `${at}.${key}`;
}

function checkDict(
  value: unknown,
  keys: readonly SchemaKey[],
  context: Context,
  at: string,
  problems: Problem[],
): void {
  if (kindOf(value) !== '<dictionary>') {
    problems.push({ path: at, message: `expected <dictionary>, got ${show(value)}` });
    return;
  }
  const dict = value as Record<string, unknown>;
  const wildcard = keys.find(isWildcard);
  for (const [name, item] of Object.entries(dict)) {
    const where = join(at, name);
    const spec = keys.find((k) => k.key === name) ?? wildcard;
    if (!spec) {
      const known = keys.map((k) => k.key);
      const listed =
        known.length === 0
          ? 'no keys here'
          : known.length > 15
            ? `${known.slice(0, 15).join(', ')}, … ${known.length} keys`
            : known.join(', ');
      problems.push({ path: where, message: `unknown key (Apple lists ${listed})` });
      continue;
    }
    if (spec !== wildcard) {
      const why = unavailableReason(spec, context);
      if (why) problems.push({ path: where, message: why });
    }
    checkValue(item, spec, context, where, problems);
  }
  for (const spec of keys) {
    if (!(spec.key in dict) && requiredHere(spec, context)) {
      problems.push({ path: join(at, spec.key), message: `missing required key (${spec.type})` });
    }
  }
}

function checkValue(
  value: unknown,
  spec: SchemaKey,
  context: Context,
  at: string,
  problems: Problem[],
): void {
  if (spec.type === '<any>') {
    if (kindOf(value) === null)
      problems.push({ path: at, message: `expected a plist value, got ${show(value)}` });
    return;
  }
  const kind = kindOf(value);
  if (kind !== spec.type) {
    problems.push({ path: at, message: `expected ${spec.type}, got ${show(value)}` });
    return;
  }
  if (spec.rangelist) {
    const normalised =
      typeof value === 'bigint' ? Number(value) : value instanceof PlistReal ? value.value : value;
    if (!spec.rangelist.some((allowed) => allowed === normalised)) {
      problems.push({
        path: at,
        message: `${show(value)} is not one of Apple's allowed values (${spec.rangelist.map(String).join(', ')})`,
      });
    }
  }
  const n = numeric(value);
  if (spec.range && n !== null) {
    if (spec.range.min !== undefined && n < spec.range.min) {
      problems.push({ path: at, message: `${n} is below the minimum ${spec.range.min}` });
    }
    if (spec.range.max !== undefined && n > spec.range.max) {
      problems.push({ path: at, message: `${n} is above the maximum ${spec.range.max}` });
    }
  }
  if (spec.format && typeof value === 'string' && !new RegExp(spec.format).test(value)) {
    problems.push({ path: at, message: `${show(value)} does not match the format ${spec.format}` });
  }
  switch (kind) {
    case '<string>':
      // DeviceInformation's Queries: the allowed strings are spelled as subkeys.
      if (spec.subkeys && spec.subkeys.length > 0) {
        const allowed = spec.subkeys.find((k) => k.key === value);
        if (!allowed) {
          problems.push({
            path: at,
            message: `${show(value)} is not one of the ${spec.subkeys.length} values Apple lists`,
          });
        } else {
          const why = unavailableReason(allowed, context);
          if (why) problems.push({ path: at, message: `${show(value)}: ${why}` });
        }
      }
      return;
    case '<dictionary>':
      if (spec.subkeys && spec.subkeys.length > 0) checkDict(value, spec.subkeys, context, at, problems);
      return;
    case '<array>': {
      const items = value as unknown[];
      if (spec.repetition?.min !== undefined && items.length < spec.repetition.min) {
        problems.push({
          path: at,
          message: `${items.length} items, Apple wants at least ${spec.repetition.min}`,
        });
      }
      if (spec.repetition?.max !== undefined && items.length > spec.repetition.max) {
        problems.push({
          path: at,
          message: `${items.length} items, Apple allows at most ${spec.repetition.max}`,
        });
      }
      const alternatives = spec.subkeys ?? [];
      if (alternatives.length === 0) return;
      items.forEach((item, i) => {
        const where = `${at}[${i}]`;
        // Several subkeys are alternatives (Settings): the item must fit one of them.
        let best: Problem[] | null = null;
        for (const alternative of alternatives) {
          const found: Problem[] = [];
          checkValue(item, alternative, context, where, found);
          if (best === null || found.length < best.length) best = found;
          if (found.length === 0) break;
        }
        problems.push(...(best ?? []));
      });
      return;
    }
    default:
      return;
  }
}
