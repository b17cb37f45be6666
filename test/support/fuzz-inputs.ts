/**
 * Hostile inputs for the fuzz run (issue 18, item 5; decision 0028): fast-check arbitraries of what
 * an attacker — or a broken device, a broken proxy, a confused script — can send to
 * `/mdm/checkin`, `/mdm/connect`, `/vpp/notify` and the REST API. Each generated case says what a
 * correct server answers (`expect`); test/support/fuzz-run.ts sends it and judges the answer.
 *
 * Pure: no I/O except reading Apple's check-in schema (../shared/fixtures) once, and signing with
 * the identities the caller passes in.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { parse as parseYaml } from 'yaml';
import { buildPlist, PlistReal, real } from '../../src/mdm/plist.ts';
import type { PlistDict, PlistValue } from '../../src/mdm/plist.ts';
import { APPLE_SCHEMA_DIR } from './apple-schema.ts';

/** What the server must answer for a case. */
export type Expectation =
  /** An MDM request that must be refused: exactly 400 (decision 0004). */
  | 'mdm-400'
  /** A validly signed MDM message with odd content: 200, 400 or 410 — never 401, never 5xx. */
  | 'mdm-any'
  /** Apps and Books notification: any 2xx or 4xx, never 5xx. */
  | 'vpp'
  /** Apps and Books notification without a known bearer: 401. */
  | 'vpp-401'
  /** REST API with a valid token: 2xx/3xx or 4xx with `{error:{code,message}}`, never 5xx. */
  | 'api'
  /** REST API without a valid token: 401. */
  | 'api-401';

export interface FuzzCase {
  /** Short description for the report (what kind of hostility). */
  kind: string;
  method: string;
  /** Path and query, percent-encoded as sent. */
  path: string;
  headers: Record<string, string>;
  body?: Uint8Array;
  expect: Expectation;
}

/** Whoever signs on the attacker's side. `sign` returns the base64 Mdm-Signature of a body. */
export interface Signer {
  udid: string;
  sign(body: Uint8Array): string;
}

export interface FuzzContext {
  /** An enrolled device the fuzzer controls: its valid signatures carry the hostile bodies past the signature check. */
  attacker: Signer;
  /** An identity from a CA haishin never saw. */
  foreign: Signer;
  /** UDIDs of the well-behaved devices (used as forged UDIDs: the binding must refuse them). */
  goodUdids: readonly string[];
  /** A real (body, signature) pair a good device sent: replayed over other bodies. */
  captured: { body: Uint8Array; signature: string };
  /** The notification bearer Apple was given for a registered token (or null: none registered). */
  vppBearer: string | null;
  adminToken: string;
  /** Ids of real objects, sometimes used as path parameters (GETs only: never changes good devices). */
  realIds: readonly string[];
  /** Operations of /api/v1/openapi.json. */
  operations: readonly ApiOperation[];
  /** Largest body the MDM routes accept (HAISHIN_MAX_BODY_BYTES). */
  maxBodyBytes: number;
  /** Scale of "huge" inputs: 1 in CI, larger in the benchmark. */
  hugeBytes: number;
}

// ---------------------------------------------------------------------------------------------
// Apple's check-in schema: the known keys of each message type and their types

interface SchemaKey {
  key: string;
  type: string;
}

/** MessageType → its top-level keys as Apple's schema lists them (TokenUpdate: Token, PushMagic, …). */
export function checkinSchemas(): Record<string, SchemaKey[]> {
  const dir = path.join(APPLE_SCHEMA_DIR, 'mdm/checkin');
  const out: Record<string, SchemaKey[]> = {};
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml'))) {
    const doc = parseYaml(readFileSync(path.join(dir, file), 'utf8'), { maxAliasCount: -1 }) as {
      payload?: { requesttype?: string };
      payloadkeys?: { key: string; type: string }[];
    };
    const type = doc.payload?.requesttype;
    if (!type) continue;
    out[type] = (doc.payloadkeys ?? []).map((k) => ({ key: k.key, type: k.type }));
  }
  return out;
}

/** Keys of command reports (Apple: "Command response"), as haishin reads them. */
const REPORT_KEYS: SchemaKey[] = [
  { key: 'Status', type: '<string>' },
  { key: 'UDID', type: '<string>' },
  { key: 'CommandUUID', type: '<string>' },
  { key: 'ErrorChain', type: '<array>' },
  { key: 'RejectionReason', type: '<string>' },
  { key: 'Identifier', type: '<string>' },
  { key: 'State', type: '<string>' },
  { key: 'UserID', type: '<string>' },
  { key: 'UserShortName', type: '<string>' },
  { key: 'EnrollmentID', type: '<string>' },
  { key: 'QueryResponses', type: '<dictionary>' },
  { key: 'InstalledApplicationList', type: '<array>' },
  { key: 'ManagedApplicationList', type: '<dictionary>' },
  { key: 'GlobalRestrictions', type: '<dictionary>' },
  { key: 'Users', type: '<array>' },
];
const REPORT_STATUSES = ['Idle', 'Acknowledged', 'Error', 'CommandFormatError', 'NotNow'];

// ---------------------------------------------------------------------------------------------
// Plist values

const weirdStrings = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.constantFrom(
    '',
    ' ',
    '\u0000',
    '\uFFFF',
    '\uD800', // a lone surrogate
    'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF',
    ']]>',
    '<key>',
    '&amp;&lt;',
    '%s%n%x',
    "'; DROP TABLE devices; --",
    '../../../../etc/passwd',
    '0'.repeat(400),
    '日本語の端末名',
  ),
);

/** Any plist value, shallow or nested (reals, dates, data, bigints, empty containers). */
export function plistValue(maxDepth = 3): fc.Arbitrary<PlistValue> {
  const leaf: fc.Arbitrary<PlistValue> = fc.oneof(
    weirdStrings,
    fc.integer(),
    fc.constantFrom<PlistValue>(
      0,
      -1,
      2 ** 53,
      -(2 ** 63),
      2 ** 64,
      Number.MAX_SAFE_INTEGER,
      9007199254740993n,
    ),
    fc.double().map((d) => real(d)),
    fc.boolean(),
    fc.date({
      min: new Date('0000-01-01T00:00:00Z'),
      max: new Date('9999-12-31T23:59:59Z'),
      noInvalidDate: true,
    }),
    fc.uint8Array({ maxLength: 64 }),
  );
  const { value } = fc.letrec<{ value: PlistValue }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', maxDepth },
      leaf,
      fc.array(tie('value'), { maxLength: 4 }),
      fc.dictionary(weirdStrings, tie('value'), { maxKeys: 4 }) as fc.Arbitrary<PlistValue>,
    ),
  }));
  return value;
}

/** A value of another type than `type` (Apple's `<string>`, `<data>`, …). */
function wrongTypeFor(type: string): fc.Arbitrary<PlistValue> {
  return plistValue(2).filter((v) => typeOf(v) !== type);
}

function typeOf(v: PlistValue): string {
  if (typeof v === 'string') return '<string>';
  if (typeof v === 'number' || typeof v === 'bigint') return '<integer>';
  if (typeof v === 'boolean') return '<boolean>';
  if (v instanceof Date) return '<date>';
  if (v instanceof Uint8Array) return '<data>';
  if (Array.isArray(v)) return '<array>';
  if (v !== null && typeof v === 'object' && 'value' in v && Object.keys(v).length === 1) return '<real>';
  return '<dictionary>';
}

/** A plausible value of Apple's `type`, for the keys not under attack. */
function rightValueFor(type: string, key: string, udid: string): PlistValue {
  if (key === 'UDID') return udid;
  switch (type) {
    case '<string>':
      return key === 'CommandUUID' ? '6F0F1D2A-0000-4000-8000-000000000000' : `fuzz-${key}`;
    case '<integer>':
      return 1;
    case '<real>':
      return real(1.5);
    case '<boolean>':
      return false;
    case '<data>':
      return new Uint8Array(32).fill(7);
    case '<date>':
      return new Date(0);
    case '<array>':
      return [];
    default:
      return {};
  }
}

// ---------------------------------------------------------------------------------------------
// MDM bodies

const XML_HEAD =
  '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n';

const utf8 = (s: string): Uint8Array => Buffer.from(s, 'utf8');

/** Characters XML 1.0 cannot carry (haishin's own writer refuses them). */
const XML_UNSAFE =
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const HOLE = '\uE000';

/**
 * A plist of `message` as text, even when its strings hold what XML cannot carry: those characters
 * are written as numeric character references (`&#x0;`, `&#xD800;`) — which a reader must refuse
 * or survive, as it must everything else here.
 */
export function hostilePlist(message: PlistDict): string {
  const refs: string[] = [];
  const clean = (v: PlistValue): PlistValue => {
    if (typeof v === 'string')
      return v.replace(XML_UNSAFE, (c) => (refs.push(`&#x${c.charCodeAt(0).toString(16)};`), HOLE));
    if (Array.isArray(v)) return v.map(clean);
    if (
      v !== null &&
      typeof v === 'object' &&
      !(v instanceof Date) &&
      !(v instanceof Uint8Array) &&
      !(v instanceof PlistReal)
    ) {
      // No prototype: a generated key "__proto__" stays a key.
      const out = Object.create(null) as PlistDict;
      for (const [k, item] of Object.entries(v as PlistDict)) out[clean(k) as string] = clean(item);
      return out;
    }
    return v;
  };
  const text = buildPlist(clean(message));
  let i = 0;
  return text.replace(/\uE000/g, () => refs[i++] ?? '');
}

/** A message of a known type (or an unknown one) with one or more known keys of the wrong type. */
function wrongTypedMessage(ctx: FuzzContext, schemas: Record<string, SchemaKey[]>) {
  const types = Object.keys(schemas).sort();
  const checkin = fc
    .record({
      type: fc.constantFrom(...types),
      udid: fc.constantFrom(ctx.attacker.udid, ...ctx.goodUdids),
      pick: fc.nat(),
      count: fc.integer({ min: 1, max: 3 }),
      seed: fc.array(fc.nat(), { minLength: 3, maxLength: 3 }),
    })
    .chain(({ type, udid, pick, count }) => {
      const keys = schemas[type]!;
      const chosen = Array.from(
        { length: count },
        (_, i) => keys[(pick + i * 7) % Math.max(1, keys.length)],
      ).filter((k): k is SchemaKey => k !== undefined);
      return fc.tuple(...chosen.map((k) => wrongTypeFor(k.type))).map((bad) => {
        const message: PlistDict = { MessageType: type };
        for (const k of keys) message[k.key] = rightValueFor(k.type, k.key, udid);
        chosen.forEach((k, i) => (message[k.key] = bad[i]!));
        return { kind: `wrong types in ${type} (${chosen.map((k) => k.key).join(', ')})`, message };
      });
    });
  const report = fc
    .record({
      status: fc.constantFrom(...REPORT_STATUSES),
      udid: fc.constantFrom(ctx.attacker.udid, ...ctx.goodUdids),
      key: fc.constantFrom(...REPORT_KEYS),
    })
    .chain(({ status, udid, key }) =>
      wrongTypeFor(key.type).map((bad) => {
        const message: PlistDict = {
          Status: status,
          UDID: udid,
          CommandUUID: '6F0F1D2A-0000-4000-8000-000000000000',
        };
        message[key.key] = bad;
        return { kind: `wrong type for ${key.key} in a ${status} report`, message };
      }),
    );
  const unknownType = fc
    .record({
      type: fc.oneof(weirdStrings, fc.constantFrom('Authenticate ', 'authenticate', 'Idle', 'CheckIn')),
      asStatus: fc.boolean(),
      extra: fc.dictionary(weirdStrings, plistValue(2), { maxKeys: 3 }),
    })
    .map(({ type, asStatus, extra }) => ({
      kind: asStatus ? 'unknown report Status' : 'unknown MessageType',
      message: {
        ...extra,
        ...(asStatus ? { Status: type } : { MessageType: type }),
        UDID: ctx.attacker.udid,
      },
    }));
  const errorChain = fc
    .array(
      fc.dictionary(
        fc.constantFrom('ErrorCode', 'ErrorDomain', 'LocalizedDescription', 'USEnglishDescription'),
        plistValue(2),
      ),
      { maxLength: 5 },
    )
    .map((chain) => ({
      kind: 'Error report with a hostile ErrorChain',
      message: {
        Status: 'Error',
        UDID: ctx.attacker.udid,
        CommandUUID: '6F0F1D2A-0000-4000-8000-000000000001',
        ErrorChain: chain as PlistValue,
      } as PlistDict,
    }));
  return fc.oneof(checkin, report, unknownType, errorChain);
}

/** Bodies that are not a readable plist dictionary: every one of them must be refused. */
function unreadableBody(
  ctx: FuzzContext,
  valid: fc.Arbitrary<Uint8Array>,
): fc.Arbitrary<{ kind: string; body: Uint8Array }> {
  const depth = fc.integer({ min: 50, max: 20_000 });
  return fc.oneof(
    valid.chain((b) =>
      fc
        .integer({ min: 0, max: Math.max(0, b.length - 2) })
        .map((cut) => ({ kind: 'truncated plist', body: b.subarray(0, cut) })),
    ),
    fc.tuple(depth, fc.constantFrom('array', 'dict')).map(([n, tag]) => ({
      kind: `nested ${n} deep (${tag})`,
      body: utf8(
        `${XML_HEAD}<plist version="1.0">` +
          (tag === 'array'
            ? '<array>'.repeat(n) + '</array>'.repeat(n)
            : '<dict><key>k</key>'.repeat(n) + '<string/>' + '</dict>'.repeat(n)) +
          '</plist>',
      ),
    })),
    fc.integer({ min: 1, max: 12 }).map((levels) => ({
      kind: 'billion laughs',
      body: utf8(
        `<?xml version="1.0"?>\n<!DOCTYPE plist [\n<!ENTITY lol0 "lol">\n` +
          Array.from({ length: levels }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i};`.repeat(10)}">`).join(
            '\n',
          ) +
          `\n]>\n<plist version="1.0"><dict><key>MessageType</key><string>&lol${levels};</string><key>UDID</key><string>${ctx.attacker.udid}</string></dict></plist>`,
      ),
    })),
    fc
      .constantFrom('file:///etc/passwd', 'http://127.0.0.1:9/x', '/dev/zero', 'file:///proc/self/environ')
      .map((uri) => ({
        kind: 'external entity',
        body: utf8(
          `<?xml version="1.0"?>\n<!DOCTYPE plist [<!ENTITY xxe SYSTEM "${uri}">]>\n<plist version="1.0"><dict><key>MessageType</key><string>&xxe;</string><key>UDID</key><string>${ctx.attacker.udid}</string></dict></plist>`,
        ),
      })),
    fc.uint8Array({ maxLength: 512 }).map((tail) => ({
      kind: 'binary plist',
      body: Buffer.concat([Buffer.from('bplist00'), tail]),
    })),
    fc.uint8Array({ maxLength: 2048 }).map((b) => ({ kind: 'random bytes', body: b })),
    fc
      .jsonValue({ maxDepth: 3 })
      .map((j) => ({ kind: 'JSON instead of a plist', body: utf8(JSON.stringify(j) ?? 'null') })),
    fc.constant({ kind: 'empty body', body: new Uint8Array(0) }),
    fc.integer({ min: 1, max: 4 }).map((k) => ({
      kind: 'larger than the body limit',
      body: utf8(
        `${XML_HEAD}<plist version="1.0"><dict><key>MessageType</key><string>${'A'.repeat(ctx.maxBodyBytes + k * 1024)}</string></dict></plist>`,
      ),
    })),
    fc
      .constantFrom(
        '<plist version="1.0"><array><string>not a dict</string></array></plist>',
        '<plist version="1.0"><dict><key>MessageType</key></dict></plist>',
        '<plist version="1.0"><dict><key>a</key><string>1</string><key>a</key><string>2</string></dict></plist>',
        '<plist><dict><key>MessageType</key><integer>1e999</integer></dict></plist>',
        '<plist><dict><key>UDID</key><data>!!!not base64</data></dict></plist>',
        '<plist><dict><key>UDID</key><date>yesterday</date></dict></plist>',
        '<plist><dict></plist>',
        '<plist><dict><key>&#xD800;</key><string>&#0;</string></dict></plist>',
        '<plist><dict><key>&#99999999999;</key><string/></dict></plist>',
        '<plist><dict><key>x</key><string>&unknown;</string></dict></plist>',
        '<?xml version="1.0" encoding="UTF-16"?><plist><dict/></plist>',
        '\uFEFF\uFEFF<plist><dict/></plist>',
        '<!-- <plist><dict/></plist>',
        '<plist><![CDATA[<dict/>]]></plist>',
      )
      .map((s) => ({ kind: 'malformed plist', body: utf8(s) })),
  );
}

/** Valid UTF-8 bytes with some replaced by invalid sequences (overlong, lone continuation, surrogates). */
function withInvalidUtf8(body: fc.Arbitrary<Uint8Array>) {
  const bad = fc.constantFrom(
    [0xc0, 0x80],
    [0x80],
    [0xed, 0xa0, 0x80],
    [0xf8, 0x88, 0x80, 0x80, 0x80],
    [0xff],
    [0xe3, 0x81],
  );
  return fc
    .tuple(body, fc.array(fc.tuple(fc.nat(), bad), { minLength: 1, maxLength: 4 }))
    .map(([b, edits]) => {
      let out = Buffer.from(b);
      for (const [at, seq] of edits) {
        const i = b.length === 0 ? 0 : at % b.length;
        out = Buffer.concat([out.subarray(0, i), Buffer.from(seq), out.subarray(i)]);
      }
      return out as Uint8Array;
    });
}

interface Tlv {
  tag: number;
  start: number;
  valueStart: number;
  end: number;
}

function tlvAt(der: Uint8Array, at: number): Tlv {
  let len = der[at + 1]!;
  let header = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let k = 0; k < n; k++) len = len * 256 + der[at + 2 + k]!;
    header += n;
  }
  return { tag: der[at]!, start: at, valueStart: at + header, end: at + header + len };
}

function childrenOf(der: Uint8Array, node: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let p = node.valueStart; p < node.end;) {
    const child = tlvAt(der, p);
    out.push(child);
    p = child.end;
  }
  return out;
}

/**
 * Byte ranges of a CMS SignedData (as a device makes it) that the signature depends on: the
 * certificates, the SignerInfo's sid, digest algorithm OID, signed attributes and signature value.
 * A flipped byte elsewhere (SignedData's version or digestAlgorithms set, a SEQUENCE tag, the NULL
 * parameters) changes nothing signed, and haishin's reader tolerates some of those.
 */
export function protectedRanges(der: Uint8Array): [number, number][] {
  const [, explicit] = childrenOf(der, tlvAt(der, 0));
  const signedData = childrenOf(der, explicit!)[0]!;
  const parts = childrenOf(der, signedData);
  const certs = parts.find((p) => p.tag === 0xa0)!;
  const signerInfo = childrenOf(der, parts.at(-1)!)[0]!;
  const [, sid, digestAlgorithm, attributes, , value] = childrenOf(der, signerInfo);
  const digestOid = childrenOf(der, digestAlgorithm!)[0]!;
  return [
    [certs.valueStart, certs.end],
    [sid!.start, sid!.end],
    [digestOid.valueStart, digestOid.end],
    [attributes!.valueStart, attributes!.end],
    [value!.valueStart, value!.end],
  ];
}

/** Signature headers other than the attacker's own valid one; every one of them must be refused. */
function badSignature(
  ctx: FuzzContext,
  body: Uint8Array,
): fc.Arbitrary<{ kind: string; header: string | null }> {
  const good = ctx.attacker.sign(body);
  const raw = Buffer.from(good, 'base64');
  return fc.oneof(
    fc.constant({ kind: 'no signature', header: null }),
    fc.constant({ kind: 'replayed signature of another body', header: ctx.captured.signature }),
    fc.constant({ kind: 'signed by a CA haishin did not issue', header: ctx.foreign.sign(body) }),
    fc
      .integer({ min: 0, max: raw.length - 1 })
      .map((cut) => ({ kind: 'truncated signature', header: raw.subarray(0, cut).toString('base64') })),
    fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })).map(([at, x]) => {
      // Inside what makes the signature: the signer certificate, the signer's id and digest
      // algorithm, the signed attributes, the signature value.
      const ranges = protectedRanges(raw);
      const total = ranges.reduce((n, [a, b]) => n + b - a, 0);
      let i = at % total;
      let index = 0;
      for (const [a, b] of ranges) {
        if (i < b - a) {
          index = a + i;
          break;
        }
        i -= b - a;
      }
      const copy = Buffer.from(raw);
      copy[index]! ^= x;
      return { kind: 'signature with a flipped byte in what it signs', header: copy.toString('base64') };
    }),
    fc
      .uint8Array({ maxLength: 600 })
      .map((b) => ({ kind: 'random DER', header: Buffer.from([0x30, 0x82, ...b]).toString('base64') })),
    fc
      .string({
        unit: fc.constantFrom(
          ...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ .:'.split(''),
        ),
        maxLength: 300,
      })
      .map((s) => ({
        kind: 'garbage signature text',
        header: s,
      })),
    fc.constant({ kind: 'huge signature header', header: 'A'.repeat(12_000) }),
  );
}

const MDM_CONTENT_TYPES = [
  'application/x-apple-aspen-mdm-checkin',
  'application/x-apple-aspen-mdm',
  'application/json',
  'text/plain; charset=utf-16',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=zzz',
  'application/xml',
  '',
];

/** Cases for `/mdm/checkin` and `/mdm/connect`. */
export function mdmCases(ctx: FuzzContext, schemas = checkinSchemas()): fc.Arbitrary<FuzzCase> {
  const messages = wrongTypedMessage(ctx, schemas);
  const validBodies = messages.map((m) => utf8(hostilePlist(m.message)));
  const endpoint = fc.constantFrom('/mdm/checkin', '/mdm/connect');
  const contentType = fc.constantFrom(...MDM_CONTENT_TYPES);
  const make = (
    kind: string,
    path: string,
    ct: string,
    body: Uint8Array,
    signature: string | null,
    expect: Expectation,
  ): FuzzCase => ({
    kind,
    method: 'PUT',
    path,
    headers: {
      ...(ct ? { 'content-type': ct } : {}),
      ...(signature !== null ? { 'mdm-signature': signature } : {}),
    },
    body,
    expect,
  });
  // Signed by the attacker's real identity: the body reaches the plist parser and the service.
  const signedOdd = fc.tuple(messages, endpoint, contentType).map(([m, p, ct]) => {
    const body = utf8(hostilePlist(m.message));
    return make(m.kind, p, ct, body, ctx.attacker.sign(body), 'mdm-any');
  });
  const signedUnreadable = fc
    .tuple(unreadableBody(ctx, validBodies), endpoint, contentType)
    .map(([b, p, ct]) => make(b.kind, p, ct, b.body, ctx.attacker.sign(b.body), 'mdm-400'));
  const signedInvalidUtf8 = fc.tuple(withInvalidUtf8(validBodies), endpoint, contentType).map(([b, p, ct]) =>
    // Invalid UTF-8 inside a string may still leave a readable message (U+FFFD): no 5xx, no 401.
    make('invalid UTF-8', p, ct, b, ctx.attacker.sign(b), 'mdm-any'),
  );
  const badlySigned = fc
    .tuple(
      fc.oneof(
        validBodies,
        unreadableBody(ctx, validBodies).map((b) => b.body),
      ),
      endpoint,
      contentType,
    )
    .chain(([body, p, ct]) =>
      badSignature(ctx, body).map((s) => make(s.kind, p, ct, body, s.header, 'mdm-400')),
    );
  // Outside what is signed a flipped byte may pass (see protectedRanges): it must still never hurt.
  const flippedAnywhere = fc
    .tuple(validBodies, endpoint, fc.nat(), fc.integer({ min: 1, max: 255 }))
    .map(([body, p, at, x]) => {
      const raw = Buffer.from(ctx.attacker.sign(body), 'base64');
      raw[at % raw.length]! ^= x;
      return make(
        'signature with a flipped byte anywhere',
        p,
        MDM_CONTENT_TYPES[0]!,
        body,
        raw.toString('base64'),
        'mdm-any',
      );
    });
  // A good device's exact message, resent: MDM has no nonce; it must simply not hurt.
  const replay = endpoint.map((p) =>
    make(
      'exact replay of a good device message',
      p,
      MDM_CONTENT_TYPES[0]!,
      ctx.captured.body,
      ctx.captured.signature,
      'mdm-any',
    ),
  );
  return fc.oneof(
    { arbitrary: signedOdd, weight: 4 },
    { arbitrary: signedUnreadable, weight: 4 },
    { arbitrary: signedInvalidUtf8, weight: 1 },
    { arbitrary: badlySigned, weight: 4 },
    { arbitrary: replay, weight: 1 },
    { arbitrary: flippedAnywhere, weight: 1 },
  );
}

// ---------------------------------------------------------------------------------------------
// JSON: /vpp/notify and the REST API

/** Deeply nested JSON text (arrays or objects), which recursive code would overflow on. */
const deepJson = fc
  .tuple(fc.integer({ min: 100, max: 100_000 }), fc.boolean())
  .map(([n, arrays]) => (arrays ? '['.repeat(n) + ']'.repeat(n) : '{"a":'.repeat(n) + '1' + '}'.repeat(n)));

/** Hostile JSON bodies (as bytes): random values, wrong shapes, deep nesting, huge strings, broken text. */
function hostileJson(
  ctx: FuzzContext,
  shaped: fc.Arbitrary<unknown>,
): fc.Arbitrary<{ kind: string; body: Uint8Array }> {
  return fc.oneof(
    {
      arbitrary: shaped.map((v) => ({ kind: 'schema keys with wrong types', body: utf8(JSON.stringify(v)) })),
      weight: 5,
    },
    {
      arbitrary: fc
        .jsonValue({ maxDepth: 4 })
        .map((v) => ({ kind: 'random JSON', body: utf8(JSON.stringify(v) ?? 'null') })),
      weight: 3,
    },
    { arbitrary: deepJson.map((s) => ({ kind: 'deeply nested JSON', body: utf8(s) })), weight: 1 },
    {
      arbitrary: fc.integer({ min: 1, max: 3 }).map((k) => ({
        kind: 'huge JSON string',
        body: utf8(JSON.stringify({ notificationId: 'x'.repeat(ctx.hugeBytes * k), name: 'y' })),
      })),
      weight: 1,
    },
    {
      arbitrary: shaped.chain((v) => {
        const s = JSON.stringify(v);
        return fc
          .integer({ min: 0, max: Math.max(0, s.length - 1) })
          .map((cut) => ({ kind: 'truncated JSON', body: utf8(s.slice(0, cut)) }));
      }),
      weight: 1,
    },
    {
      arbitrary: withInvalidUtf8(shaped.map((v) => utf8(JSON.stringify(v)))).map((b) => ({
        kind: 'invalid UTF-8 in JSON',
        body: b,
      })),
      weight: 1,
    },
    {
      arbitrary: fc
        .constantFrom(
          '',
          'null',
          '""',
          '[]',
          '1e999',
          '{"__proto__":{"polluted":true}}',
          '{"constructor":{"prototype":{"x":1}}}',
          '\uFEFF{}',
          '{"a":1,"a":2}',
          'NaN',
          '{"a":"\\ud800"}',
        )
        .map((s) => ({
          kind: 'edge JSON',
          body: utf8(s),
        })),
      weight: 1,
    },
  );
}

/** Apple's notification shape with every field filled by any JSON value. */
function vppShaped(): fc.Arbitrary<unknown> {
  const anyJson = fc.jsonValue({ maxDepth: 2 });
  const notification = fc.record(
    {
      eventId: fc.oneof(fc.string(), fc.integer(), anyJson),
      result: fc.oneof(fc.constantFrom('SUCCESS', 'FAILURE', 'COMPLETE', 'FAILED'), anyJson),
      adamId: fc.oneof(fc.string(), fc.integer(), anyJson),
      countDelta: fc.oneof(
        fc.integer(),
        fc.double(),
        fc.string(),
        anyJson,
        fc.constantFrom(1e308, -1e308, 2 ** 63),
      ),
      pricingParam: fc.oneof(fc.constantFrom('STDQ', 'PLUS'), anyJson),
      assignments: fc.oneof(
        fc.array(fc.record({ serialNumber: anyJson, adamId: anyJson }, { requiredKeys: [] }), {
          maxLength: 4,
        }),
        anyJson,
      ),
      failures: fc.oneof(fc.array(anyJson, { maxLength: 3 }), anyJson),
      error: fc.oneof(
        fc.record(
          {
            errorNumber: anyJson,
            errorMessage: anyJson,
            errorInfo: fc.oneof(
              anyJson,
              fc.record({ serialNumbers: anyJson, assets: anyJson }, { requiredKeys: [] }),
            ),
          },
          { requiredKeys: [] },
        ),
        anyJson,
      ),
    },
    { requiredKeys: [] },
  );
  return fc.record(
    {
      notificationId: fc.oneof(fc.uuid(), fc.string(), fc.constantFrom('n\u0000', '\u0000'), anyJson),
      notificationType: fc.oneof(
        fc.constantFrom(
          'ASSET_MANAGEMENT',
          'ASSET_COUNT',
          'USER_MANAGEMENT',
          'USER_ASSOCIATED',
          'TEST_NOTIFICATION',
        ),
        anyJson,
      ),
      notification: fc.oneof(notification, anyJson),
      extra: anyJson,
    },
    { requiredKeys: [] },
  );
}

/** Cases for `/vpp/notify`. */
export function vppCases(ctx: FuzzContext): fc.Arbitrary<FuzzCase> {
  const auth = fc.oneof(
    {
      arbitrary: fc.constant(
        ctx.vppBearer ? { header: `Bearer ${ctx.vppBearer}`, known: true } : { header: null, known: false },
      ),
      weight: 4,
    },
    {
      arbitrary: fc.oneof(
        fc.constant({ header: null as string | null, known: false }),
        fc
          .constantFrom(
            'Bearer',
            'Bearer ',
            'Basic Zm9vOmJhcg==',
            `Bearer ${ctx.adminToken}`,
            `bearer  ${'x'.repeat(5000)}`,
          )
          .map((h) => ({ header: h as string | null, known: false })),
        fc
          .string({ minLength: 1, maxLength: 60, unit: fc.constantFrom(...'abcXYZ019-_.'.split('')) })
          .map((s) => ({ header: `Bearer ${s}` as string | null, known: false })),
      ),
      weight: 1,
    },
  );
  return fc
    .tuple(
      hostileJson(ctx, vppShaped()),
      auth,
      fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', ''),
    )
    .map(([b, a, ct]) => ({
      kind: `vpp: ${b.kind}${a.known ? '' : ' (unknown bearer)'}`,
      method: 'POST',
      path: '/vpp/notify',
      headers: {
        ...(ct ? { 'content-type': ct } : {}),
        ...(a.header !== null ? { authorization: a.header } : {}),
      },
      body: b.body,
      expect: a.known ? 'vpp' : 'vpp-401',
    }));
}

/** One operation of the OpenAPI document. */
export interface ApiOperation {
  method: string;
  /** `/api/v1/groups/{id}` */
  path: string;
  pathParams: string[];
  query: { name: string; schema: JsonSchema }[];
  body: JsonSchema | null;
}

export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
}

/** The operations of `/api/v1/openapi.json`. */
export function operationsOf(doc: {
  paths: Record<
    string,
    Record<
      string,
      {
        parameters?: { name: string; in: string; schema: JsonSchema }[];
        requestBody?: { content: Record<string, { schema: JsonSchema }> };
      }
    >
  >;
}): ApiOperation[] {
  const out: ApiOperation[] = [];
  for (const [p, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const params = op.parameters ?? [];
      out.push({
        method: method.toUpperCase(),
        path: p,
        pathParams: params.filter((x) => x.in === 'path').map((x) => x.name),
        query: params.filter((x) => x.in === 'query').map((x) => ({ name: x.name, schema: x.schema })),
        body: op.requestBody?.content['application/json']?.schema ?? null,
      });
    }
  }
  return out.sort((a, b) => `${a.method} ${a.path}`.localeCompare(`${b.method} ${b.path}`));
}

const anyJsonValue = fc.jsonValue({ maxDepth: 3 });

/** A value for a schema: sometimes right-ish, mostly of another type or an edge value. */
function valueFor(schema: JsonSchema | undefined, depth = 0): fc.Arbitrary<unknown> {
  const edge = fc.constantFrom(
    null,
    '',
    0,
    -1,
    1.5,
    2 ** 53 + 2,
    -1e308,
    true,
    [],
    {},
    'x'.repeat(10_000),
    '\u0000',
    '2026-13-45T99:99:99Z',
    '../..',
    [null],
    { $gt: '' },
  );
  const plausible: fc.Arbitrary<unknown>[] = [];
  if (schema?.enum?.length) plausible.push(fc.constantFrom(...schema.enum));
  if (schema?.const !== undefined) plausible.push(fc.constant(schema.const));
  const t = Array.isArray(schema?.type) ? schema?.type[0] : schema?.type;
  // Any code point too (NUL, lone surrogates, controls): text columns differ between stores.
  if (t === 'string')
    plausible.push(fc.string({ maxLength: 80 }), fc.string({ unit: 'binary', maxLength: 20 }));
  if (t === 'integer' || t === 'number') plausible.push(fc.integer());
  if (t === 'boolean') plausible.push(fc.boolean());
  if (t === 'array' && depth < 3)
    plausible.push(fc.array(valueFor(schema?.items, depth + 1), { maxLength: 3 }));
  if (t === 'object' && schema?.properties && depth < 3) plausible.push(objectFor(schema, depth + 1));
  for (const alt of schema?.anyOf ?? []) if (depth < 3) plausible.push(valueFor(alt, depth + 1));
  const nul = fc.constantFrom('\u0000', 'a\u0000b', 'x'.repeat(30) + '\u0000');
  return fc.oneof(edge, nul, anyJsonValue, ...plausible);
}

function objectFor(schema: JsonSchema, depth = 0): fc.Arbitrary<Record<string, unknown>> {
  const props = Object.entries(schema.properties ?? {});
  const known = fc.record(Object.fromEntries(props.map(([k, s]) => [k, valueFor(s, depth)])), {
    requiredKeys: [],
  });
  return fc
    .tuple(known, fc.dictionary(fc.string({ maxLength: 20 }), anyJsonValue, { maxKeys: 3 }))
    .map(([k, unknown]) => ({ ...unknown, ...k }));
}

const PATH_PARAM = fc.oneof(
  fc.constantFrom('%00', 'a%00b'),
  fc.string({ minLength: 1, maxLength: 40 }),
  fc.uuid(),
  fc.constantFrom(
    '..',
    '%2e%2e',
    '%00',
    'a%00b',
    '%ZZ',
    '%E0%A4%A',
    '%C0%80',
    'null',
    '-1',
    '0',
    '1e9',
    '9'.repeat(40),
    'x'.repeat(300),
    '%F0%9F%98%80',
    "' OR 1=1 --",
  ),
);
const CURSOR = fc.oneof(
  fc.base64String({ maxLength: 80 }),
  fc.string({ maxLength: 40 }),
  fc.constantFrom(
    '',
    'null',
    'eyJ9',
    Buffer.from('{"id":{"$ne":1}}').toString('base64url'),
    Buffer.from('{"at":"x","id":null}').toString('base64url'),
  ),
);

function queryValue(name: string, schema: JsonSchema): fc.Arbitrary<string> {
  if (name === 'cursor') return CURSOR;
  return valueFor(schema).map((v) => (typeof v === 'string' ? v : (JSON.stringify(v) ?? '')));
}

/** Cases for the REST API, walking the OpenAPI operations. */
export function apiCases(ctx: FuzzContext): fc.Arbitrary<FuzzCase> {
  const ops = ctx.operations;
  if (ops.length === 0) throw new Error('apiCases: the OpenAPI document lists no operation');
  return fc.constantFrom(...ops).chain((op) => {
    const useReal = op.method === 'GET' && ctx.realIds.length > 0;
    const param = useReal ? fc.oneof(PATH_PARAM, fc.constantFrom(...ctx.realIds)) : PATH_PARAM;
    const params = fc.tuple(...op.pathParams.map(() => param));
    const query = fc
      .tuple(
        fc.subarray(op.query),
        fc.array(fc.tuple(fc.string({ minLength: 1, maxLength: 12 }), fc.string({ maxLength: 20 })), {
          maxLength: 2,
        }),
        fc.boolean(),
      )
      .chain(([known, unknown, repeat]) =>
        fc
          .tuple(
            ...known.map((q) => queryValue(q.name, q.schema).map((v) => [q.name, v] as [string, string])),
          )
          .map((pairs) => {
            const all = [...pairs, ...unknown];
            if (repeat && pairs[0]) all.push(pairs[0]); // a repeated parameter arrives as an array
            return all;
          }),
      );
    const body = op.body
      ? hostileJson(ctx, objectFor(op.body))
      : fc.option(hostileJson(ctx, anyJsonValue), { nil: undefined });
    const auth = fc.oneof(
      {
        arbitrary: fc.constant({ header: `Bearer ${ctx.adminToken}` as string | null, valid: true }),
        weight: 8,
      },
      {
        arbitrary: fc
          .constantFrom<string | null>(
            null,
            'Bearer',
            `Bearer ${ctx.adminToken}x`,
            `Basic ${ctx.adminToken}`,
            `Bearer ${'A'.repeat(4000)}`,
            `Bearer ${ctx.adminToken.slice(0, -1)}`,
          )
          .map((h) => ({ header: h, valid: false })),
        weight: 1,
      },
    );
    const ct = fc.constantFrom(
      'application/json',
      'application/json; charset=utf-8',
      'text/plain',
      'application/x-www-form-urlencoded',
      'application/xml',
      '',
    );
    return fc.tuple(params, query, body, auth, ct).map(([ps, qs, b, a, contentType]): FuzzCase => {
      let i = 0;
      const p = op.path.replace(/\{[^}]+\}/g, () => encodeParam(ps[i++]!));
      const search = qs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
      const withBody = b !== undefined && op.method !== 'GET' && op.method !== 'DELETE';
      return {
        kind: `api ${op.method} ${op.path}${withBody ? `: ${b.kind}` : ''}${a.valid ? '' : ' (bad token)'}`,
        method: op.method,
        path: search ? `${p}?${search}` : p,
        headers: {
          ...(a.header !== null ? { authorization: a.header } : {}),
          ...(withBody && contentType ? { 'content-type': contentType } : {}),
        },
        ...(withBody ? { body: b.body } : {}),
        expect: a.valid ? 'api' : 'api-401',
      };
    });
  });
}

/** Path parameters as a client sends them: the generator's `%..` sequences are kept raw on purpose. */
function encodeParam(v: string): string {
  return /^%/.test(v) ? v : encodeURIComponent(v);
}

/** Every kind of case, weighted so that each target gets its share. */
export function allCases(ctx: FuzzContext, schemas = checkinSchemas()): fc.Arbitrary<FuzzCase> {
  return fc.oneof(
    { arbitrary: mdmCases(ctx, schemas), weight: 5 },
    { arbitrary: vppCases(ctx), weight: 2 },
    { arbitrary: apiCases(ctx), weight: 3 },
  );
}
