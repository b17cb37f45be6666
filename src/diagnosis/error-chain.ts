/**
 * Reading device and Apple errors the way administrators paste them: a mobiconnect-style
 * `ErrorCode[0]=…` line, a plist ErrorChain, an Apps and Books JSON error, or just a number in a
 * sentence. Pure and forgiving: whatever cannot be read is left out, never thrown.
 */

export interface ChainItem {
  code: number;
  domain: string | null;
  /** LocalizedDescription (in the device's language), else the US English one. */
  description: string | null;
  /** USEnglishDescription when the device sent it. */
  englishDescription?: string | null;
}

export interface VppError {
  errorNumber: number;
  errorMessage: string | null;
}

export type ErrorTextFormat = 'mobiconnect' | 'plist' | 'vpp_json' | 'bare' | 'unknown';

export interface ParsedError {
  /** First item = top error, as the device orders it. */
  chain: ChainItem[];
  vppError: VppError | null;
  rejectionReason: string | null;
  format: ErrorTextFormat;
}

/** InstallApplication RejectionReason values (DESIGN §6 and Apple's schema). */
export const REJECTION_REASONS = [
  'AppAlreadyInstalled',
  'AppAlreadyQueued',
  'AppStoreDisabled',
  'CouldNotVerifyAppID',
  'ManagementChangeNotSupported',
  'NotAnApp',
  'NotSupported',
  'Other',
  'PurchaseMethodNotSupported',
  'PurchaseMethodNotSupportedInMultiUser',
] as const;

const MDM_FAMILY = 'MDMErrorDomain';

/** `MCMDMErrorDomain` (older iOS) and `MDMErrorDomain` are one family; other domains are only trimmed. */
export function normaliseDomain(domain: string | null | undefined): string | null {
  if (domain === null || domain === undefined) return null;
  const trimmed = domain.trim();
  if (trimmed === '') return null;
  return /^(?:MC)?MDMErrorDomain$/i.test(trimmed) ? MDM_FAMILY : trimmed;
}

export function sameDomainFamily(a: string | null | undefined, b: string | null | undefined): boolean {
  const na = normaliseDomain(a);
  return na !== null && na === normaliseDomain(b);
}

/** Apps and Books error numbers live in 9600–9799; device codes never do. */
export function isVppErrorNumber(n: number): boolean {
  return n >= 9600 && n <= 9799;
}

/** Pasted errors are short; a cap keeps a mistaken paste of a whole log cheap. */
export const MAX_ERROR_TEXT = 1_000_000;

export function parseErrorText(input: string): ParsedError {
  const text = input.length > MAX_ERROR_TEXT ? input.slice(0, MAX_ERROR_TEXT) : input;
  const rejectionReason = findRejectionReason(text);
  const vppError = findVppJson(text);

  const plistChain = looksLikePlist(text) ? parsePlistChain(text) : [];
  if (plistChain.length > 0) return { chain: plistChain, vppError, rejectionReason, format: 'plist' };

  const keyed = parseKeyValueChain(text);
  if (keyed.length > 0) return { chain: keyed, vppError, rejectionReason, format: 'mobiconnect' };

  if (vppError) return { chain: [], vppError, rejectionReason, format: 'vpp_json' };

  const bare = parseBare(text);
  if (bare.chain.length > 0 || bare.vppError) {
    return { chain: bare.chain, vppError: bare.vppError, rejectionReason, format: 'bare' };
  }
  const byMessage = findTokenMessage(text);
  if (byMessage) return { chain: [], vppError: byMessage, rejectionReason, format: 'bare' };
  return { chain: [], vppError: null, rejectionReason, format: rejectionReason ? 'bare' : 'unknown' };
}

/**
 * Apple's token errors are often pasted as their message alone (a console shows the message, not
 * the number). The messages are Apple's own, as its service configuration lists them (`errorCodes`).
 */
const TOKEN_MESSAGES: readonly (readonly [RegExp, number])[] = [
  [/\bThe token has expired\b/i, 9621],
  [/\bInvalid authentication token\b/i, 9622],
  [/\brevoked the sToken\b/i, 9625],
];

function findTokenMessage(text: string): VppError | null {
  for (const [pattern, errorNumber] of TOKEN_MESSAGES) {
    const m = pattern.exec(text);
    if (m) return { errorNumber, errorMessage: m[0] };
  }
  return null;
}

/**
 * An ErrorChain as decoded from a device's plist (an array of dicts). Lets the engine, which
 * already holds the decoded report, use the same item shape as pasted text.
 */
export function chainFromObjects(value: unknown): ChainItem[] {
  if (!Array.isArray(value)) return [];
  const out: ChainItem[] = [];
  for (const entry of value) {
    if (typeof entry !== 'object' || entry === null) continue;
    const record = entry as Record<string, unknown>;
    const code = toInteger(record.ErrorCode);
    if (code === null) continue;
    out.push(
      makeItem(
        code,
        asText(record.ErrorDomain),
        asText(record.LocalizedDescription),
        asText(record.USEnglishDescription),
      ),
    );
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Shared helpers

function makeItem(
  code: number,
  domain: string | null,
  localized: string | null,
  english: string | null,
): ChainItem {
  const item: ChainItem = { code, domain, description: localized ?? english };
  if (english !== null) item.englishDescription = english;
  return item;
}

function asText(v: unknown): string | null {
  if (typeof v !== 'string') return null;
  const t = v.trim();
  return t === '' ? null : t;
}

function toInteger(v: unknown): number | null {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string') {
    const m = /-?\d+/.exec(foldWidth(v));
    return m ? Number(m[0]) : null;
  }
  return null;
}

/**
 * Full-width ASCII (Ｅｒｒｏｒ［０］＝１２０６４，) and the ideographic space become their ASCII
 * forms, one character for one, so positions found in the folded text are valid in the original
 * (descriptions are sliced from the original and keep their own characters).
 */
function foldWidth(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (c >= 0xff01 && c <= 0xff5e) out += String.fromCodePoint(c - 0xfee0);
    else if (c === 0x3000) out += ' ';
    else if (c === 0x2212)
      out += '-'; // the mathematical minus some editors substitute
    else out += ch;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// RejectionReason

function findRejectionReason(text: string): string | null {
  const folded = foldWidth(text);
  const plist = /<key>\s*RejectionReason\s*<\/key>\s*<string>\s*([A-Za-z]+)\s*<\/string>/.exec(folded);
  if (plist) return plist[1]!;
  const keyed = /RejectionReason["']?\s*[=:]\s*["'「]?([A-Za-z]+)/.exec(folded);
  if (keyed) return keyed[1]!;
  // Without a key, the generic words ("Other", "NotSupported") would match ordinary prose.
  const specific = REJECTION_REASONS.filter((r) => r !== 'Other' && r !== 'NotSupported' && r !== 'NotAnApp');
  let best: { reason: string; at: number } | null = null;
  for (const reason of specific) {
    const m = new RegExp(`(?<![A-Za-z])${reason}(?![A-Za-z])`).exec(folded);
    if (m && (best === null || m.index < best.at)) best = { reason, at: m.index };
  }
  return best?.reason ?? null;
}

// ---------------------------------------------------------------------------------------------
// (a) mobiconnect-style `ErrorCode[0]=12064, ErrorDomain[0]=…` and OpenStep `ErrorCode = 12064;`

type Field = 'ErrorCode' | 'ErrorDomain' | 'LocalizedDescription' | 'USEnglishDescription';
const FIELDS: readonly Field[] = ['ErrorCode', 'ErrorDomain', 'LocalizedDescription', 'USEnglishDescription'];

/**
 * Keys that end the value before them. Descriptions may contain commas, so values are not split
 * on separators: a value runs until the next key. Besides the chain's own fields, any
 * `Name[n]=` and a few keys of the surrounding command report count as keys.
 */
const KEY_RE =
  /(?<![A-Za-z0-9_])(?:([A-Za-z][A-Za-z0-9_]*)\s*\[\s*(\d+)\s*\]|(ErrorChain|ErrorCode|ErrorDomain|LocalizedDescription|USEnglishDescription|RejectionReason|CommandUUID|RequestType|Status|UDID))["']?\s*[=:]\s*/gi;

/** Non-field keys are matched case-sensitively, so "status:" inside a description is not a key. */
const REPORT_KEYS = new Set([
  'ErrorChain',
  'RejectionReason',
  'CommandUUID',
  'RequestType',
  'Status',
  'UDID',
]);

interface KeyHit {
  name: string;
  index: number | null;
  start: number;
  valueStart: number;
}

function fieldOf(name: string): Field | null {
  const lower = name.toLowerCase();
  return FIELDS.find((f) => f.toLowerCase() === lower) ?? null;
}

function parseKeyValueChain(text: string): ChainItem[] {
  const folded = foldWidth(text);
  const hits: KeyHit[] = [];
  for (const m of folded.matchAll(KEY_RE)) {
    const name = m[1] ?? m[3]!;
    if (m[3] !== undefined && fieldOf(name) === null && !REPORT_KEYS.has(name)) continue;
    hits.push({
      name,
      index: m[2] === undefined ? null : Number(m[2]),
      start: m.index,
      valueStart: m.index + m[0].length,
    });
  }
  if (!hits.some((h) => fieldOf(h.name) === 'ErrorCode')) return [];

  interface Draft {
    code?: number;
    domain?: string;
    localized?: string;
    english?: string;
  }
  const indexed = new Map<number, Draft>();
  const sequential: Draft[] = [];
  let current: Draft | null = null;

  hits.forEach((hit, i) => {
    const field = fieldOf(hit.name);
    if (field === null) return;
    const next = hits[i + 1];
    let raw = text.slice(hit.valueStart, next ? next.start : text.length);
    let foldedRaw = folded.slice(hit.valueStart, next ? next.start : folded.length);
    // The chain's last value ends with its line: what follows is the rest of the log, not the description.
    const nextIsChainField = next !== undefined && fieldOf(next.name) !== null;
    if (!nextIsChainField) {
      const eol = raw.search(/\r?\n/);
      if (eol >= 0) {
        raw = raw.slice(0, eol);
        foldedRaw = foldedRaw.slice(0, eol);
      }
    }

    let draft: Draft;
    if (hit.index !== null) {
      draft = indexed.get(hit.index) ?? {};
      indexed.set(hit.index, draft);
    } else {
      const slot = draftKey(field);
      if (current === null || current[slot] !== undefined) {
        current = {};
        sequential.push(current);
      }
      draft = current;
    }

    switch (field) {
      case 'ErrorCode': {
        const m = /-?\d+/.exec(foldedRaw);
        if (m) draft.code = Number(m[0]);
        break;
      }
      case 'ErrorDomain': {
        const m = /[A-Za-z_][\w.-]*/.exec(foldedRaw);
        if (m) draft.domain = m[0].replace(/[.-]+$/, '');
        break;
      }
      case 'LocalizedDescription':
      case 'USEnglishDescription': {
        const value = cleanDescription(raw);
        if (value !== null) draft[field === 'LocalizedDescription' ? 'localized' : 'english'] = value;
        break;
      }
    }
  });

  const ordered = [...[...indexed.entries()].sort((a, b) => a[0] - b[0]).map(([, d]) => d), ...sequential];
  const out: ChainItem[] = [];
  for (const d of ordered) {
    if (d.code === undefined) continue;
    out.push(makeItem(d.code, d.domain ?? null, d.localized ?? null, d.english ?? null));
  }
  return out;
}

function draftKey(field: Field): 'code' | 'domain' | 'localized' | 'english' {
  switch (field) {
    case 'ErrorCode':
      return 'code';
    case 'ErrorDomain':
      return 'domain';
    case 'LocalizedDescription':
      return 'localized';
    case 'USEnglishDescription':
      return 'english';
  }
}

const CLOSERS: Record<string, string> = { ')': '(', '}': '{', ']': '[', '）': '（', '」': '「', '』': '『' };

function cleanDescription(raw: string): string | null {
  let v = raw.replace(/\s+/g, ' ').trim();
  // A quoted value (OpenStep dumps, JSON-ish logs) ends at its closing quote, whatever follows.
  // Only when nothing but list punctuation follows: “OSUpdateStatus” is not a valid… is not quoted.
  const quoted = readQuoted(v);
  if (quoted !== null && /^[\s,;，、；(){}[\]（）]*$/u.test(quoted.rest)) {
    const inner = quoted.inner.trim();
    return inner === '' ? null : inner;
  }
  // Separators and brackets that belong to the surrounding list, not to the text.
  for (;;) {
    const before = v;
    v = v.replace(/[\s,;，、；{([（]+$/u, '');
    const last = v.at(-1);
    if (last !== undefined && last in CLOSERS) {
      const opener = CLOSERS[last]!;
      if (count(v, opener) < count(v, last)) v = v.slice(0, -1);
    }
    if (v === before) break;
  }
  return v === '' ? null : v;
}

const QUOTE_CLOSE: Record<string, string> = { '"': '"', '“': '”', '「': '」', '『': '』' };

/** The text inside a leading quote up to its closing one; backslash escapes only for ASCII quotes. */
function readQuoted(v: string): { inner: string; rest: string } | null {
  const open = v[0];
  if (open === undefined || !(open in QUOTE_CLOSE)) return null;
  const close = QUOTE_CLOSE[open]!;
  let out = '';
  for (let i = 1; i < v.length; i++) {
    const c = v[i]!;
    if (open === '"' && c === '\\' && i + 1 < v.length) {
      const n = v[++i]!;
      out += n === 'n' ? '\n' : n === 't' ? '\t' : n;
    } else if (c === close) return { inner: out, rest: v.slice(i + 1) };
    else out += c;
  }
  return null; // unterminated: not a quoted value after all
}

function count(s: string, ch: string): number {
  let n = 0;
  for (const c of s) if (c === ch) n++;
  return n;
}

// ---------------------------------------------------------------------------------------------
// (b) plist ErrorChain: a whole command report, or a fragment starting at <array> or <dict>

function looksLikePlist(text: string): boolean {
  return /<key>\s*Error(?:Code|Chain)\s*<\/key>/.test(text);
}

/** Scalar contents never hold a raw '<' (plists escape it), which keeps the scan linear. */
const PLIST_TOKEN_RE =
  /<(\/?)(dict|array)\s*>|<(dict|array)\s*\/>|<key>([^<]*)<\/key>|<(string|integer|real|date|data)\s*>([^<]*)<\/\5\s*>|<(string|integer|real|date|data|true|false)\s*\/>/g;

interface Frame {
  kind: 'dict' | 'array';
  fields: Map<string, string>;
  pendingKey: string | null;
}

/**
 * A token walk rather than a full plist parser: it only needs the flat dicts holding ErrorCode,
 * and it must survive fragments (no <plist>, unbalanced tags) that a strict parser rejects.
 */
function parsePlistChain(text: string): ChainItem[] {
  const root: Frame = { kind: 'dict', fields: new Map(), pendingKey: null };
  const stack: Frame[] = [root];
  const out: ChainItem[] = [];

  const flush = (frame: Frame) => {
    const code = toInteger(frame.fields.get('ErrorCode'));
    if (code === null) return;
    out.push(
      makeItem(
        code,
        asText(frame.fields.get('ErrorDomain')),
        asText(frame.fields.get('LocalizedDescription')),
        asText(frame.fields.get('USEnglishDescription')),
      ),
    );
  };

  for (const m of text.matchAll(PLIST_TOKEN_RE)) {
    const top = stack[stack.length - 1]!;
    if (m[2] !== undefined) {
      if (m[1] === '/') {
        if (stack.length > 1) {
          const closed = stack.pop()!;
          if (closed.kind === 'dict') flush(closed);
        }
      } else {
        top.pendingKey = null;
        stack.push({ kind: m[2] as Frame['kind'], fields: new Map(), pendingKey: null });
      }
    } else if (m[3] !== undefined) {
      top.pendingKey = null;
    } else if (m[4] !== undefined) {
      const key = decodeEntities(m[4]).trim();
      // A fragment without <dict> holds several items in the implicit root: a repeated
      // ErrorCode starts the next one.
      if (top === root && key === 'ErrorCode' && root.fields.has('ErrorCode')) {
        flush(root);
        root.fields.clear();
      }
      top.pendingKey = key;
    } else {
      const value =
        m[6] !== undefined
          ? decodeEntities(m[6])
          : m[7] === 'true'
            ? 'true'
            : m[7] === 'false'
              ? 'false'
              : '';
      if (top.kind === 'dict' && top.pendingKey !== null) top.fields.set(top.pendingKey, value);
      top.pendingKey = null;
    }
  }
  // A fragment cut off mid-chain still yields the dicts it opened, outermost (earliest) first.
  const open = stack.splice(1);
  for (const frame of open) if (frame.kind === 'dict') flush(frame);
  flush(root);
  return out;
}

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#\d+|lt|gt|amp|quot|apos);/g, (whole, name: string) => {
    switch (name) {
      case 'lt':
        return '<';
      case 'gt':
        return '>';
      case 'amp':
        return '&';
      case 'quot':
        return '"';
      case 'apos':
        return "'";
    }
    const cp = name.startsWith('#x') ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
    return Number.isFinite(cp) && cp <= 0x10ffff ? String.fromCodePoint(cp) : whole;
  });
}

// ---------------------------------------------------------------------------------------------
// (c) Apps and Books JSON error `{"errorNumber": 9709, "errorMessage": "…"}`, also inside other text

const MAX_OBJECT_TRIES = 32;

function findVppJson(text: string): VppError | null {
  const at = text.search(/["']?errorNumber["']?\s*[:=]/);
  if (at < 0) return null;
  // The nearest '{' before the key whose balanced object parses and carries errorNumber itself.
  let tries = 0;
  for (
    let open = text.lastIndexOf('{', at);
    open >= 0 && tries < MAX_OBJECT_TRIES;
    open = text.lastIndexOf('{', open - 1)
  ) {
    tries++;
    const close = balancedEnd(text, open);
    if (close === null || close < at) continue;
    try {
      const parsed: unknown = JSON.parse(text.slice(open, close + 1));
      if (typeof parsed === 'object' && parsed !== null && 'errorNumber' in parsed) {
        const rec = parsed as Record<string, unknown>;
        const errorNumber = toInteger(rec.errorNumber);
        if (errorNumber !== null) return { errorNumber, errorMessage: asText(rec.errorMessage) };
      }
    } catch {
      // Not JSON (a log line, a JavaScript dump): the regex below reads it.
    }
    if (open === 0) break;
  }
  const num = /["']?errorNumber["']?\s*[:=]\s*["']?(\d+)/.exec(text);
  if (!num) return null;
  const msg = /["']?errorMessage["']?\s*[:=]\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)')/.exec(text);
  let errorMessage: string | null = null;
  if (msg) {
    if (msg[1] !== undefined) {
      try {
        errorMessage = asText(JSON.parse(`"${msg[1]}"`) as string);
      } catch {
        errorMessage = asText(msg[1]);
      }
    } else errorMessage = asText(msg[2]);
  }
  return { errorNumber: Number(num[1]), errorMessage };
}

/** Index of the brace closing the one at `open`, skipping braces inside JSON strings. */
function balancedEnd(text: string, open: number): number | null {
  let depth = 0;
  let inString = false;
  for (let i = open; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{') depth++;
    else if (c === '}') {
      depth--;
      if (depth === 0) return i;
    }
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// (d) bare mentions: "12064", "error 9610", "ASDErrorDomain 506", NSError descriptions

/**
 * Codes recognised on their own anywhere in a sentence. Other numbers need a domain or a word
 * such as "error" next to them, so that Adam IDs, dates and counts are not read as errors.
 */
const KNOWN_BARE_CODES = new Set([
  12021, 12023, 12025, 12026, 12031, 12035, 12040, 12047, 12063, 12064, 12065, 2605, 9603, 9610, 9621, 9622,
  9625, 9628, 9646, 9700, 9701, 9702, 9703, 9704, 9705, 9706, 9707, 9709, 9722,
]);

interface Found {
  at: number;
  code: number;
  domain: string | null;
  description: string | null;
}

function parseBare(text: string): { chain: ChainItem[]; vppError: VppError | null } {
  const folded = foldWidth(text);
  const found: Found[] = [];

  // NSError's own description: Error Domain=ASDErrorDomain Code=506 "…"
  for (const m of folded.matchAll(/Domain\s*=\s*([A-Za-z_][\w.-]*)\s+Code\s*=\s*(-?\d+)(?:\s+"([^"]*)")?/g)) {
    found.push({ at: m.index, code: Number(m[2]), domain: m[1]!, description: m[3] ? asText(m[3]) : null });
  }
  for (const m of folded.matchAll(
    /(?<![\w.])([A-Za-z][\w]*(?:\.[A-Za-z][\w]*)*(?:ErrorDomain|\.error))(?![\w])\s*[:#(（]?\s*(?:code\s*[=:]?\s*)?(-?\d{1,6})(?!\d)/gi,
  )) {
    found.push({ at: m.index, code: Number(m[2]), domain: m[1]!, description: null });
  }
  for (const m of folded.matchAll(
    /(?<![A-Za-z])(?:error|err|code|エラー(?:コード|番号)?|コード)\s*(?:number|no\.?|#|番号)?\s*[:#=]?\s*(-?\d{3,5})(?![\d.])/gi,
  )) {
    found.push({
      at: m.index + m[0].length - m[1]!.length,
      code: Number(m[1]),
      domain: null,
      description: null,
    });
  }
  for (const m of folded.matchAll(/(?<![\d.-])(\d{4,5})(?![\d.])/g)) {
    const code = Number(m[1]);
    if (KNOWN_BARE_CODES.has(code)) found.push({ at: m.index, code, domain: null, description: null });
  }
  const whole = /^\s*(-?\d{1,6})\s*$/.exec(folded);
  if (whole) found.push({ at: 0, code: Number(whole[1]), domain: null, description: null });

  found.sort((a, b) => a.at - b.at);
  const chain: ChainItem[] = [];
  let vppError: VppError | null = null;
  for (const f of found) {
    if (f.domain === null && isVppErrorNumber(f.code)) {
      vppError ??= { errorNumber: f.code, errorMessage: null };
      continue;
    }
    const same = chain.find((c) => c.code === f.code);
    if (same) {
      // The same code seen again with its domain: keep the more informative reading.
      if (same.domain === null && f.domain !== null) same.domain = f.domain;
      if (same.description === null && f.description !== null) same.description = f.description;
      continue;
    }
    chain.push({ code: f.code, domain: f.domain, description: f.description });
  }
  return { chain, vppError };
}
