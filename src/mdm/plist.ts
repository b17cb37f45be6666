/**
 * XML property-list codec for the MDM wire protocol.
 *
 * Every check-in and command report goes through `parsePlist`, so the parser is a single pass over
 * the decoded string that jumps with `indexOf`/`startsWith` instead of building a DOM: a 187 KB
 * InstalledApplicationList costs a few milliseconds instead of the ~60 ms the `plist` package needs.
 *
 * It is deliberately stricter than a general XML parser, because the input comes from the network:
 * - no entity expansion of any kind: `<!ENTITY` and DOCTYPE internal subsets are refused, only the five
 *   predefined entities and numeric character references are decoded;
 * - a size cap is checked before any work, nesting depth is bounded, binary plists are refused;
 * - the structure must be exactly one value inside `<plist>`, dicts must alternate key/value,
 *   and a key may appear only once per dict (so two parsers can never disagree about its value);
 * - integers must fit Apple's 64-bit range; larger ones would otherwise force slow BigInt parsing.
 *
 * Deliberate leniencies, because real devices and fixtures need them:
 * - `<data>` ignores whitespace anywhere, accepts missing `=` padding, and accepts up to two
 *   surplus `=` after the last full group (`AAAA=` decodes to three zero bytes, as Python's plistlib
 *   does). `=` followed by more data, or a dangling single character, is an error.
 * - attributes on elements are ignored (only `<plist version="1.0">` carries any in practice).
 * - `<real>` accepts `nan`, `inf`, `infinity` with optional sign, case-insensitively.
 */
import { Buffer, isUtf8 } from 'node:buffer';

export type PlistValue =
  string | number | bigint | boolean | Date | Uint8Array | PlistReal | PlistValue[] | PlistDict;

export interface PlistDict {
  [key: string]: PlistValue;
}

/**
 * A number that must travel as `<real>` even when it is integral (32 → `<real>32.0</real>`), so a
 * reader that distinguishes int from float (plistlib, Foundation) sees a float.
 */
export class PlistReal {
  constructor(readonly value: number) {}
}

export function real(n: number): PlistReal {
  return new PlistReal(n);
}

export class PlistError extends Error {
  override readonly name = 'PlistError';
  /** UTF-8 byte offset in the input where the problem was found, when it is about a position. */
  readonly offset: number | undefined;

  constructor(message: string, offset?: number) {
    super(offset === undefined ? message : `${message} (at byte ${offset})`);
    this.offset = offset;
  }
}

export interface ParseOptions {
  /** Largest accepted input in UTF-8 bytes; checked before anything else. */
  maxBytes?: number;
  /** Return `<real>` values as `PlistReal`, so a build of the result keeps `32.0` a real. */
  exactReals?: boolean;
}

export const DEFAULT_MAX_PLIST_BYTES = 10 * 1024 * 1024;

/** Deep enough for any MDM payload, shallow enough that recursion can never exhaust the stack. */
const MAX_DEPTH = 256;

// Apple's integers are signed 64-bit, with unsigned 64-bit accepted for the top half.
const MIN_INTEGER = -(2n ** 63n);
const MAX_INTEGER = 2n ** 64n - 1n;

const LT = 60; // <
const GT = 62; // >
const SLASH = 47;
const BANG = 33;
const QMARK = 63;
const QUOT = 34;
const APOS = 39;
const LBRACKET = 91;

const BPLIST_MAGIC = [0x62, 0x70, 0x6c, 0x69, 0x73, 0x74, 0x30, 0x30]; // "bplist00"

export function parsePlist(input: string | Uint8Array, options: ParseOptions = {}): PlistValue {
  const max = options.maxBytes ?? DEFAULT_MAX_PLIST_BYTES;
  if (!(max >= 0)) throw new RangeError(`maxBytes must be a non-negative number, got ${max}`);
  let text: string;
  let fromBytes: boolean;
  if (typeof input === 'string') {
    // Each UTF-16 unit is 1–3 UTF-8 bytes, so only the middle band needs an exact count.
    const size =
      input.length > max || input.length * 3 <= max ? input.length : Buffer.byteLength(input, 'utf8');
    if (size > max) throw new PlistError(`plist exceeds the limit of ${max} bytes`);
    if (input.startsWith('bplist00')) throw new PlistError('binary plists are not accepted');
    text = input;
    fromBytes = false;
  } else if (input instanceof Uint8Array) {
    if (input.byteLength > max) {
      throw new PlistError(`plist of ${input.byteLength} bytes exceeds the limit of ${max} bytes`);
    }
    if (BPLIST_MAGIC.every((b, i) => input[i] === b)) throw new PlistError('binary plists are not accepted');
    if (!isUtf8(input)) throw new PlistError('plist is not valid UTF-8');
    text = Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('utf8');
    fromBytes = true;
  } else {
    throw new PlistError('plist input must be a string or a Uint8Array');
  }
  let bias = 0;
  if (text.charCodeAt(0) === 0xfeff) {
    text = text.slice(1);
    bias = 3;
  }
  return new Parser(text, options.exactReals === true, fromBytes, bias).document();
}

export function parsePlistDict(input: string | Uint8Array, options?: ParseOptions): PlistDict {
  const value = parsePlist(input, options);
  if (!isDict(value)) throw new PlistError(`the top-level value is ${describe(value)}, expected a dict`);
  return value;
}

function isDict(value: PlistValue): value is PlistDict {
  return (
    typeof value === 'object' &&
    !Array.isArray(value) &&
    !(value instanceof Date) &&
    !(value instanceof Uint8Array) &&
    !(value instanceof PlistReal)
  );
}

function describe(value: PlistValue): string {
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Date) return 'a date';
  if (value instanceof Uint8Array) return 'data';
  if (value instanceof PlistReal) return 'a real';
  if (typeof value === 'bigint') return 'an integer';
  return `a ${typeof value}`;
}

function isNameChar(c: number): boolean {
  return (
    (c >= 97 && c <= 122) || // a-z
    (c >= 65 && c <= 90) || // A-Z
    (c >= 48 && c <= 57) || // 0-9
    c === 45 || // -
    c === 95 || // _
    c === 46 || // .
    c === 58 // :
  );
}

function isSpace(c: number): boolean {
  return c === 32 || c === 10 || c === 9 || c === 13;
}

function preview(text: string): string {
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);
}

class Parser {
  readonly #s: string;
  readonly #exactReals: boolean;
  readonly #fromBytes: boolean;
  readonly #bias: number;
  #pos = 0;
  #depth = 0;
  // Filled by #readTag, read right after; avoids an object per tag on the hot path.
  #tagName = '';
  #tagEmpty = false;
  #tagClose = false;

  constructor(s: string, exactReals: boolean, fromBytes: boolean, bias: number) {
    this.#s = s;
    this.#exactReals = exactReals;
    this.#fromBytes = fromBytes;
    this.#bias = bias;
  }

  #fail(message: string, at: number = this.#pos): PlistError {
    const offset = Buffer.byteLength(this.#s.slice(0, Math.min(at, this.#s.length)), 'utf8') + this.#bias;
    return new PlistError(message, offset);
  }

  document(): PlistValue {
    const s = this.#s;
    this.#prolog();
    if (this.#pos >= s.length) throw this.#fail('empty input: no <plist> element');
    const start = this.#pos;
    this.#readTag();
    if (this.#tagClose || this.#tagName !== 'plist') {
      throw this.#fail(`expected <plist>, found ${this.#tagText()}`, start);
    }
    if (this.#tagEmpty) throw this.#fail('<plist> holds no value', start);
    this.#skipSpace();
    if (this.#atClose('</plist>')) throw this.#fail('<plist> holds no value', start);
    const value = this.#value(null);
    this.#skipSpace();
    if (!this.#atClose('</plist>')) {
      if (this.#pos >= s.length) throw this.#fail('unexpected end of input: <plist> is not closed');
      throw this.#fail(`expected </plist> after the root value, found ${this.#found()}`);
    }
    this.#epilogue();
    return value;
  }

  /** Whitespace, comments, processing instructions and one DOCTYPE before the root element. */
  #prolog(): void {
    const s = this.#s;
    let seenDoctype = false;
    for (;;) {
      this.#skipSpace();
      const p = this.#pos;
      if (s.charCodeAt(p) !== LT) return;
      const c1 = s.charCodeAt(p + 1);
      if (c1 === QMARK) {
        this.#skipProcessingInstruction();
      } else if (c1 === BANG) {
        if (s.startsWith('<!DOCTYPE', p)) {
          if (seenDoctype) throw this.#fail('more than one DOCTYPE');
          seenDoctype = true;
          this.#skipDoctype();
        } else {
          throw this.#unexpectedMarkup();
        }
      } else {
        return;
      }
    }
  }

  #epilogue(): void {
    const s = this.#s;
    for (;;) {
      this.#skipSpace();
      const p = this.#pos;
      if (p >= s.length) return;
      if (s.charCodeAt(p) === LT && s.charCodeAt(p + 1) === QMARK) {
        this.#skipProcessingInstruction();
        continue;
      }
      throw this.#fail(`trailing content after </plist>: ${preview(s.slice(p, p + 40))}`);
    }
  }

  #skipProcessingInstruction(): void {
    const s = this.#s;
    const p = this.#pos;
    const end = s.indexOf('?>', p + 2);
    if (end < 0) throw this.#fail('unclosed processing instruction <?', p);
    if (this.#fromBytes && s.startsWith('<?xml', p) && isSpace(s.charCodeAt(p + 5))) {
      // Bytes are decoded as UTF-8, so a document declaring anything else would be misread.
      const declaration = s.slice(p, end);
      const m = /\bencoding\s*=\s*["']([^"']*)["']/.exec(declaration);
      const encoding = m?.[1]?.toLowerCase();
      if (encoding !== undefined && encoding !== 'utf-8' && encoding !== 'utf8') {
        throw this.#fail(`unsupported encoding ${preview(m?.[1] ?? '')}: only UTF-8 is accepted`, p);
      }
    }
    this.#pos = end + 2;
  }

  #skipDoctype(): void {
    const s = this.#s;
    const start = this.#pos;
    let i = start + 9;
    for (;;) {
      const c = s.charCodeAt(i);
      if (c !== c) throw this.#fail('unclosed <!DOCTYPE', start); // NaN: past the end
      if (c === LBRACKET) {
        throw this.#fail('a DOCTYPE with an internal subset is not accepted (no entity declarations)', i);
      }
      if (c === QUOT || c === APOS) {
        const close = s.indexOf(c === QUOT ? '"' : "'", i + 1);
        if (close < 0) throw this.#fail('unclosed literal in <!DOCTYPE', i);
        i = close + 1;
        continue;
      }
      if (c === GT) break;
      i++;
    }
    this.#pos = i + 1;
  }

  #unexpectedMarkup(): PlistError {
    const s = this.#s;
    const p = this.#pos;
    if (s.startsWith('<!ENTITY', p)) return this.#fail('entity declarations are not accepted', p);
    if (s.startsWith('<!DOCTYPE', p)) return this.#fail('a DOCTYPE is only allowed before <plist>', p);
    if (s.startsWith('<![CDATA[', p)) return this.#fail('CDATA is only allowed inside <string> or <key>', p);
    return this.#fail(`unexpected markup ${preview(s.slice(p, p + 12))}`, p);
  }

  /** Skips whitespace and comments between elements. */
  #skipSpace(): void {
    const s = this.#s;
    let p = this.#pos;
    for (;;) {
      const c = s.charCodeAt(p);
      if (c === 32 || c === 10 || c === 9 || c === 13) {
        p++;
      } else if (c === LT && s.charCodeAt(p + 1) === BANG && s.startsWith('<!--', p)) {
        const end = s.indexOf('-->', p + 4);
        if (end < 0) throw this.#fail('unclosed comment', p);
        p = end + 3;
      } else {
        break;
      }
    }
    this.#pos = p;
  }

  /**
   * Reads `<name ...>`, `<name .../>` or `</name>` at the current position into the #tag fields.
   * Attributes are skipped (quote-aware); anything that is not a tag is an error.
   */
  #readTag(): void {
    const s = this.#s;
    const start = this.#pos;
    if (s.charCodeAt(start) !== LT) {
      if (start >= s.length) throw this.#fail('unexpected end of input');
      throw this.#fail(`unexpected text ${preview(s.slice(start, start + 40))}`);
    }
    let p = start + 1;
    const close = s.charCodeAt(p) === SLASH;
    if (close) p++;
    const nameStart = p;
    while (isNameChar(s.charCodeAt(p))) p++;
    if (p === nameStart) {
      if (!close && s.charCodeAt(p) === BANG) throw this.#unexpectedMarkup();
      throw this.#fail(`malformed tag ${preview(s.slice(start, start + 20))}`);
    }
    const name = s.slice(nameStart, p);
    let empty = false;
    let c = s.charCodeAt(p);
    if (c === GT) {
      p++;
    } else if (c === SLASH && !close && s.charCodeAt(p + 1) === GT) {
      p += 2;
      empty = true;
    } else {
      if (!isSpace(c)) {
        if (p >= s.length) throw this.#fail(`unclosed tag <${close ? '/' : ''}${name}`, start);
        throw this.#fail(`malformed tag ${preview(s.slice(start, p + 1))}`, start);
      }
      for (;;) {
        c = s.charCodeAt(p);
        if (c !== c) throw this.#fail(`unclosed tag <${close ? '/' : ''}${name}`, start);
        if (c === GT) {
          p++;
          break;
        }
        if (close && !isSpace(c)) throw this.#fail(`malformed closing tag </${name}`, start);
        if (c === SLASH && s.charCodeAt(p + 1) === GT) {
          p += 2;
          empty = true;
          break;
        }
        if (c === LT) throw this.#fail(`unclosed tag <${name}`, start);
        if (c === QUOT || c === APOS) {
          const end = s.indexOf(c === QUOT ? '"' : "'", p + 1);
          if (end < 0) throw this.#fail(`unclosed attribute value in <${name}>`, p);
          p = end + 1;
        } else {
          p++;
        }
      }
    }
    this.#tagName = name;
    this.#tagEmpty = empty;
    this.#tagClose = close;
    this.#pos = p;
  }

  #tagText(): string {
    return this.#tagClose ? `</${this.#tagName}>` : `<${this.#tagName}${this.#tagEmpty ? '/' : ''}>`;
  }

  /** Describes what is at the current position, for error messages. */
  #found(): string {
    const s = this.#s;
    const p = this.#pos;
    if (p >= s.length) return 'end of input';
    if (s.charCodeAt(p) !== LT) return `text ${preview(s.slice(p, p + 40))}`;
    const end = s.indexOf('>', p);
    return preview(end < 0 || end - p > 40 ? s.slice(p, p + 40) : s.slice(p, end + 1));
  }

  /** Consumes `closeTag` (e.g. `</dict>`, also `</dict >`) if it is next. */
  #atClose(closeTag: string): boolean {
    const s = this.#s;
    const p = this.#pos;
    if (s.startsWith(closeTag, p)) {
      this.#pos = p + closeTag.length;
      return true;
    }
    const bare = closeTag.length - 1;
    if (s.startsWith(closeTag.slice(0, bare), p) && isSpace(s.charCodeAt(p + bare))) {
      let q = p + bare;
      while (isSpace(s.charCodeAt(q))) q++;
      if (s.charCodeAt(q) === GT) {
        this.#pos = q + 1;
        return true;
      }
    }
    return false;
  }

  /** Parses one value element; `key` is the dict key it belongs to, for error messages. */
  #value(key: string | null): PlistValue {
    this.#skipSpace();
    const start = this.#pos;
    const s = this.#s;
    if (s.charCodeAt(start) !== LT) {
      const what = key === null ? 'a value' : `the value of key ${preview(key)}`;
      if (start >= s.length) throw this.#fail(`unexpected end of input, expected ${what}`);
      throw this.#fail(`unexpected text ${preview(s.slice(start, start + 40))}, expected ${what}`);
    }
    this.#readTag();
    const name = this.#tagName;
    if (this.#tagClose) {
      const what = key === null ? 'a value' : `the value of key ${preview(key)}`;
      throw this.#fail(`expected ${what}, found </${name}>`, start);
    }
    const empty = this.#tagEmpty;
    switch (name) {
      case 'string':
        return empty ? '' : this.#text('</string>', 'string');
      case 'dict':
        return empty ? {} : this.#dict(start);
      case 'array':
        return empty ? [] : this.#array(start);
      case 'integer':
        return this.#integer(empty, start);
      case 'real':
        return this.#real(empty, start);
      case 'true':
      case 'false':
        if (!empty) {
          this.#skipSpace();
          if (!this.#atClose(name === 'true' ? '</true>' : '</false>')) {
            throw this.#fail(`<${name}> must be empty, found ${this.#found()}`);
          }
        }
        return name === 'true';
      case 'date':
        return this.#date(empty, start);
      case 'data':
        return empty ? Buffer.alloc(0) : this.#data(start);
      case 'key':
        throw this.#fail(
          key === null ? '<key> outside a dict' : `two keys in a row: key ${preview(key)} has no value`,
          start,
        );
      default:
        throw this.#fail(`unknown element <${name}>`, start);
    }
  }

  #dict(start: number): PlistDict {
    if (++this.#depth > MAX_DEPTH) throw this.#fail(`nesting deeper than ${MAX_DEPTH} levels`, start);
    const s = this.#s;
    const out: PlistDict = {};
    for (;;) {
      this.#skipSpace();
      const p = this.#pos;
      let key: string;
      if (s.startsWith('<key>', p)) {
        this.#pos = p + 5;
        key = this.#text('</key>', 'key');
      } else if (this.#atClose('</dict>')) {
        break;
      } else {
        if (p >= s.length) throw this.#fail('unexpected end of input: <dict> is not closed', start);
        this.#readTag();
        if (this.#tagClose || this.#tagName !== 'key') {
          throw this.#fail(`expected <key> or </dict> in <dict>, found ${this.#tagText()}`, p);
        }
        key = this.#tagEmpty ? '' : this.#text('</key>', 'key');
      }
      if (Object.hasOwn(out, key)) throw this.#fail(`duplicate key ${preview(key)} in <dict>`, p);
      const value = this.#value(key);
      if (key === '__proto__') {
        // A plain assignment would replace the prototype instead of storing the key.
        Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
      } else {
        out[key] = value;
      }
    }
    this.#depth--;
    return out;
  }

  #array(start: number): PlistValue[] {
    if (++this.#depth > MAX_DEPTH) throw this.#fail(`nesting deeper than ${MAX_DEPTH} levels`, start);
    const s = this.#s;
    const out: PlistValue[] = [];
    for (;;) {
      this.#skipSpace();
      if (this.#atClose('</array>')) break;
      if (this.#pos >= s.length) throw this.#fail('unexpected end of input: <array> is not closed', start);
      out.push(this.#value(null));
    }
    this.#depth--;
    return out;
  }

  /**
   * Text content up to `closeTag`, with entities, CDATA and comments handled. The common case — plain
   * text followed directly by the closing tag — is one indexOf and one slice.
   */
  #text(closeTag: string, name: string): string {
    const s = this.#s;
    const start = this.#pos;
    const lt = s.indexOf('<', start);
    if (lt >= 0 && s.startsWith(closeTag, lt)) {
      this.#pos = lt + closeTag.length;
      if (lt === start) return '';
      const raw = s.slice(start, lt);
      return raw.indexOf('&') < 0 && raw.indexOf('\r') < 0 ? raw : this.#decode(raw, start);
    }
    return this.#textSlow(closeTag, name, start);
  }

  #textSlow(closeTag: string, name: string, open: number): string {
    const s = this.#s;
    let out = '';
    let p = open;
    for (;;) {
      const lt = s.indexOf('<', p);
      if (lt < 0) throw this.#fail(`unclosed <${name}>`, open);
      if (lt > p) out += this.#decode(s.slice(p, lt), p);
      this.#pos = lt;
      if (s.startsWith('<![CDATA[', lt)) {
        const end = s.indexOf(']]>', lt + 9);
        if (end < 0) throw this.#fail('unclosed CDATA section', lt);
        out += normaliseNewlines(s.slice(lt + 9, end));
        p = end + 3;
      } else if (s.startsWith('<!--', lt)) {
        const end = s.indexOf('-->', lt + 4);
        if (end < 0) throw this.#fail('unclosed comment', lt);
        p = end + 3;
      } else if (this.#atClose(closeTag)) {
        return out;
      } else {
        throw this.#fail(`unexpected ${this.#found()} inside <${name}>`, lt);
      }
    }
  }

  /** Decodes references in raw character data that starts at `offset` in the document. */
  #decode(raw: string, offset: number): string {
    // XML end-of-line handling happens before references, so `&#13;` still yields a CR.
    if (raw.indexOf('\r') >= 0) raw = normaliseNewlines(raw);
    let amp = raw.indexOf('&');
    if (amp < 0) return raw;
    let out = '';
    let i = 0;
    while (amp >= 0) {
      out += raw.slice(i, amp);
      const semi = raw.indexOf(';', amp + 1);
      if (semi < 0)
        throw this.#fail(`unterminated reference ${preview(raw.slice(amp, amp + 12))}`, offset + amp);
      const ref = raw.slice(amp + 1, semi);
      switch (ref) {
        case 'lt':
          out += '<';
          break;
        case 'gt':
          out += '>';
          break;
        case 'amp':
          out += '&';
          break;
        case 'quot':
          out += '"';
          break;
        case 'apos':
          out += "'";
          break;
        default: {
          if (ref.charCodeAt(0) !== 35 /* # */) {
            throw this.#fail(`unknown entity ${preview(`&${ref.slice(0, 30)};`)}`, offset + amp);
          }
          const cp = parseCharRef(ref);
          if (cp < 0) {
            throw this.#fail(`invalid character reference ${preview(`&${ref.slice(0, 30)};`)}`, offset + amp);
          }
          out += String.fromCodePoint(cp);
        }
      }
      i = semi + 1;
      amp = raw.indexOf('&', i);
    }
    return out + raw.slice(i);
  }

  #scalarText(empty: boolean, name: string, closeTag: string, start: number): string {
    if (empty) throw this.#fail(`empty <${name}/>`, start);
    return this.#text(closeTag, name).trim();
  }

  #integer(empty: boolean, start: number): number | bigint {
    const t = this.#scalarText(empty, 'integer', '</integer>', start);
    const value = parseIntegerText(t);
    if (value === null) throw this.#fail(`invalid <integer> ${preview(t)}`, start);
    if (value === undefined) throw this.#fail(`<integer> ${preview(t)} is outside the 64-bit range`, start);
    return value;
  }

  #real(empty: boolean, start: number): number | PlistReal {
    const t = this.#scalarText(empty, 'real', '</real>', start);
    const value = parseRealText(t);
    if (value === null) throw this.#fail(`invalid <real> ${preview(t)}`, start);
    return this.#exactReals ? new PlistReal(value) : value;
  }

  #date(empty: boolean, start: number): Date {
    const t = this.#scalarText(empty, 'date', '</date>', start);
    const value = parseDateText(t);
    if (value === null)
      throw this.#fail(`invalid <date> ${preview(t)}, expected YYYY-MM-DDTHH:MM:SSZ`, start);
    return value;
  }

  #data(start: number): Buffer {
    const t = this.#text('</data>', 'data');
    const problem = checkBase64(t);
    if (problem !== null) throw this.#fail(`invalid base64 in <data>: ${problem}`, start);
    return Buffer.from(t, 'base64');
  }
}

function normaliseNewlines(text: string): string {
  return text.replace(/\r\n?/g, '\n');
}

/** `#123` or `#x7B` → code point, or -1 when malformed or not an XML character. */
function parseCharRef(ref: string): number {
  const hex = ref.charCodeAt(1) === 120; /* x */
  const from = hex ? 2 : 1;
  if (ref.length === from) return -1;
  let cp = 0;
  for (let i = from; i < ref.length; i++) {
    const c = ref.charCodeAt(i);
    let d: number;
    if (c >= 48 && c <= 57) d = c - 48;
    else if (hex && c >= 97 && c <= 102) d = c - 87;
    else if (hex && c >= 65 && c <= 70) d = c - 55;
    else return -1;
    cp = cp * (hex ? 16 : 10) + d;
    if (cp > 0x10ffff) return -1;
  }
  // The XML 1.0 Char production: no NUL, C0 controls other than tab/LF/CR, surrogates, FFFE/FFFF.
  if (
    cp < 0x20
      ? cp !== 9 && cp !== 10 && cp !== 13
      : (cp >= 0xd800 && cp <= 0xdfff) || cp === 0xfffe || cp === 0xffff
  ) {
    return -1;
  }
  return cp;
}

/** Decimal integer text → number (bigint beyond safe range); null when malformed, undefined when out of range. */
function parseIntegerText(t: string): number | bigint | null | undefined {
  const n = t.length;
  let i = 0;
  const c0 = t.charCodeAt(0);
  if (c0 === 43 || c0 === 45) i = 1; // + -
  if (i === n) return null;
  for (let j = i; j < n; j++) {
    const c = t.charCodeAt(j);
    if (c < 48 || c > 57) return null;
  }
  if (n - i <= 15) {
    const v = Number(t);
    return v === 0 ? 0 : v; // no -0 from "-0"
  }
  while (i < n - 1 && t.charCodeAt(i) === 48) i++;
  // 20 digits covers 2^64; anything longer is out of range without paying for BigInt on huge input.
  if (n - i > 20) return undefined;
  const big = BigInt(c0 === 45 ? `-${t.slice(i)}` : t.slice(i));
  if (big < MIN_INTEGER || big > MAX_INTEGER) return undefined;
  return big >= -9007199254740991n && big <= 9007199254740991n ? Number(big) : big;
}

/** Decimal float text (or nan/inf spellings) → number; null when malformed. */
function parseRealText(t: string): number | null {
  const n = t.length;
  let i = 0;
  const c0 = t.charCodeAt(0);
  if (c0 === 43 || c0 === 45) i = 1;
  const c = t.charCodeAt(i);
  if (!((c >= 48 && c <= 57) || c === 46)) {
    switch (t.slice(i).toLowerCase()) {
      case 'nan':
        return NaN;
      case 'inf':
      case 'infinity':
        return c0 === 45 ? -Infinity : Infinity;
      default:
        return null;
    }
  }
  const intStart = i;
  while (i < n && isDigit(t.charCodeAt(i))) i++;
  let digits = i - intStart;
  if (t.charCodeAt(i) === 46) {
    const fracStart = ++i;
    while (i < n && isDigit(t.charCodeAt(i))) i++;
    digits += i - fracStart;
  }
  if (digits === 0) return null;
  const e = t.charCodeAt(i);
  if (e === 101 || e === 69) {
    i++;
    const s = t.charCodeAt(i);
    if (s === 43 || s === 45) i++;
    const expStart = i;
    while (i < n && isDigit(t.charCodeAt(i))) i++;
    if (i === expStart) return null;
  }
  if (i !== n) return null;
  return Number(t);
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** Strict `YYYY-MM-DDTHH:MM:SSZ` → Date; null when malformed or not a real calendar instant. */
function parseDateText(t: string): Date | null {
  if (t.length !== 20) return null;
  if (
    t.charCodeAt(4) !== 45 ||
    t.charCodeAt(7) !== 45 ||
    t.charCodeAt(10) !== 84 || // T
    t.charCodeAt(13) !== 58 ||
    t.charCodeAt(16) !== 58 ||
    t.charCodeAt(19) !== 90 // Z
  ) {
    return null;
  }
  const year = digitsAt(t, 0, 4);
  const month = digitsAt(t, 5, 2);
  const day = digitsAt(t, 8, 2);
  const hour = digitsAt(t, 11, 2);
  const minute = digitsAt(t, 14, 2);
  const second = digitsAt(t, 17, 2);
  if (year < 0 || month < 1 || month > 12 || day < 1 || day > 31) return null;
  if (hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59) return null;
  const date = new Date(0);
  // setUTCFullYear, unlike Date.UTC, does not map years 0–99 to 1900–1999.
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, 0);
  if (date.getUTCDate() !== day) return null; // 31 April etc. rolled over
  return date;
}

function digitsAt(t: string, from: number, count: number): number {
  let v = 0;
  for (let i = from; i < from + count; i++) {
    const c = t.charCodeAt(i);
    if (c < 48 || c > 57) return -1;
    v = v * 10 + (c - 48);
  }
  return v;
}

/**
 * Validates base64 text before Buffer.from, which would silently skip bad characters. Returns a
 * description of the problem, or null. Leniency is documented at the top of this file.
 */
function checkBase64(t: string): string | null {
  let data = 0;
  let pad = 0;
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if (
      (c >= 65 && c <= 90) || // A-Z
      (c >= 97 && c <= 122) || // a-z
      (c >= 48 && c <= 57) || // 0-9
      c === 43 || // +
      c === 47 // /
    ) {
      if (pad > 0) return 'data after "=" padding';
      data++;
    } else if (c === 61) {
      pad++;
    } else if (!isSpace(c)) {
      return `unexpected character ${preview(t.charAt(i))}`;
    }
  }
  if (pad > 2) return 'more than two "=" padding characters';
  if (data % 4 === 1) return 'truncated (a single leftover character)';
  return null;
}

// ---------------------------------------------------------------------------------------------------
// Building

const HEADER =
  '<?xml version="1.0" encoding="UTF-8"?>\n' +
  '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n' +
  '<plist version="1.0">\n';

/** Base64 line length inside multi-line `<data>`, as Apple's writer uses. */
const DATA_LINE = 68;

// Characters that need escaping or cannot be written in XML 1.0 at all (a reader would reject them).
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const NEEDS_WORK = /[&<>\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]/;

const indents: string[] = [''];
function indent(depth: number): string {
  let s = indents[depth];
  if (s === undefined) {
    for (let i = indents.length; i <= depth; i++) indents.push('\t'.repeat(i));
    s = indents[depth] as string;
  }
  return s;
}

export function buildPlist(value: PlistValue): string {
  const writer = new Writer();
  writer.value(value, 0);
  return `${HEADER}${writer.out}</plist>\n`;
}

class Writer {
  out = '';
  readonly #path: (string | number)[] = [];
  readonly #open = new Set<object>();

  #fail(message: string): PlistError {
    let where = '';
    for (const part of this.#path)
      where += typeof part === 'number' ? `[${part}]` : where ? `.${part}` : part;
    return new PlistError(`${message} at ${where === '' ? 'the top level' : where}`);
  }

  // The parameter is `unknown` because callers bypass the types (JSON, `as` casts) and this is where
  // such values are caught.
  value(v: unknown, depth: number): void {
    const ind = indent(depth);
    switch (typeof v) {
      case 'string':
        this.out += `${ind}<string>${this.#escape(v)}</string>\n`;
        return;
      case 'number':
        if (Number.isInteger(v) && v >= -(2 ** 63) && v < 2 ** 64) {
          this.out += `${ind}<integer>${Number.isSafeInteger(v) ? String(v) : BigInt(v).toString()}</integer>\n`;
        } else {
          // Integral doubles beyond 64 bits cannot be an Apple <integer>; they are floats in substance.
          this.out += `${ind}<real>${formatReal(v)}</real>\n`;
        }
        return;
      case 'bigint':
        if (v < MIN_INTEGER || v > MAX_INTEGER) throw this.#fail(`integer ${v} is outside the 64-bit range`);
        this.out += `${ind}<integer>${v.toString()}</integer>\n`;
        return;
      case 'boolean':
        this.out += v ? `${ind}<true/>\n` : `${ind}<false/>\n`;
        return;
      case 'object':
        if (v === null) throw this.#fail('null cannot be written to a plist');
        if (Array.isArray(v)) return this.#array(v, depth);
        if (v instanceof Uint8Array) return this.#data(v, ind);
        if (v instanceof PlistReal) {
          if (typeof v.value !== 'number') throw this.#fail('PlistReal holds a non-number');
          this.out += `${ind}<real>${formatReal(v.value)}</real>\n`;
          return;
        }
        if (v instanceof Date) {
          const time = v.getTime();
          if (time !== time) throw this.#fail('invalid Date');
          const year = v.getUTCFullYear();
          if (year < 0 || year > 9999) throw this.#fail(`Date year ${year} cannot be written`);
          this.out += `${ind}<date>${v.toISOString().slice(0, 19)}Z</date>\n`;
          return;
        }
        {
          const proto: unknown = Object.getPrototypeOf(v);
          if (proto !== Object.prototype && proto !== null) {
            const kind = (v as { constructor?: { name?: string } }).constructor?.name ?? 'object';
            throw this.#fail(`a ${kind} cannot be written to a plist`);
          }
        }
        return this.#dict(v as Record<string, unknown>, depth);
      case 'undefined':
        throw this.#fail('undefined cannot be written to a plist');
      default:
        throw this.#fail(`a ${typeof v} cannot be written to a plist`);
    }
  }

  #enter(v: object): void {
    if (this.#open.has(v)) throw this.#fail('circular reference');
    this.#open.add(v);
  }

  #array(v: unknown[], depth: number): void {
    const ind = indent(depth);
    if (v.length === 0) {
      this.out += `${ind}<array/>\n`;
      return;
    }
    this.#enter(v);
    this.out += `${ind}<array>\n`;
    const path = this.#path;
    for (let i = 0; i < v.length; i++) {
      path.push(i);
      this.value(v[i], depth + 1);
      path.pop();
    }
    this.out += `${ind}</array>\n`;
    this.#open.delete(v);
  }

  #dict(v: Record<string, unknown>, depth: number): void {
    const ind = indent(depth);
    const keys = Object.keys(v);
    if (!keys.some((k) => v[k] !== undefined)) {
      this.out += `${ind}<dict/>\n`;
      return;
    }
    this.#enter(v);
    this.out += `${ind}<dict>\n`;
    const inner = indent(depth + 1);
    const path = this.#path;
    for (const key of keys) {
      const item = v[key];
      if (item === undefined) continue;
      path.push(key);
      this.out += `${inner}<key>${this.#escape(key)}</key>\n`;
      this.value(item, depth + 1);
      path.pop();
    }
    this.out += `${ind}</dict>\n`;
    this.#open.delete(v);
  }

  #data(v: Uint8Array, ind: string): void {
    const b64 = Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
    if (b64.length <= DATA_LINE) {
      this.out += `${ind}<data>${b64}</data>\n`;
      return;
    }
    let out = `${ind}<data>\n`;
    for (let i = 0; i < b64.length; i += DATA_LINE) out += `${ind}${b64.slice(i, i + DATA_LINE)}\n`;
    this.out += `${out}${ind}</data>\n`;
  }

  #escape(s: string): string {
    if (!NEEDS_WORK.test(s)) return s;
    let out = '';
    let from = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      let rep: string;
      if (c === 38) rep = '&amp;';
      else if (c === 60) rep = '&lt;';
      else if (c === 62) rep = '&gt;';
      else if (c === 13)
        rep = '&#13;'; // a raw CR would come back as LF after XML newline handling
      else if (c < 0x20 && c !== 9 && c !== 10) {
        throw this.#fail(
          `string contains control character U+${c.toString(16).padStart(4, '0').toUpperCase()}`,
        );
      } else if (c >= 0xd800 && c <= 0xdbff) {
        const next = s.charCodeAt(i + 1);
        if (!(next >= 0xdc00 && next <= 0xdfff)) throw this.#fail('string contains a lone surrogate');
        i++;
        continue;
      } else if ((c >= 0xdc00 && c <= 0xdfff) || c === 0xfffe || c === 0xffff) {
        throw this.#fail(`string contains U+${c.toString(16).toUpperCase()}, which XML cannot carry`);
      } else {
        continue;
      }
      out += s.slice(from, i) + rep;
      from = i + 1;
    }
    return out + s.slice(from);
  }
}

/** Shortest round-trip text, always recognisable as a float (`32.0`, not `32`), nan/inf as plistlib writes them. */
function formatReal(n: number): string {
  if (n !== n) return 'nan';
  if (n === Infinity) return 'inf';
  if (n === -Infinity) return '-inf';
  if (Object.is(n, -0)) return '-0.0';
  const s = String(n);
  return s.includes('.') || s.includes('e') ? s : `${s}.0`;
}
