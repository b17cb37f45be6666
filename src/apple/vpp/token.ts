/** A `.vpptoken` (content token) file, decoded locally: Apple is not asked. */
export interface VppTokenFile {
  /** The file's base64 text, trimmed: this whole text is the `Authorization: Bearer` value. */
  sToken: string;
  /** The `token` field inside (itself opaque). */
  token: string;
  orgName: string;
  expiresAt: Date;
}

/** The file is not a content token; the message names the first thing wrong with it. */
export class VppTokenFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VppTokenFileError';
  }
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
// Apple writes `2030-11-08T22:33:22+0000`; other tools write `+02:00` or `Z`.
const EXP_DATE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})$/;

export function decodeVppToken(fileContents: string | Uint8Array): VppTokenFile {
  let text: string;
  if (typeof fileContents === 'string') {
    text = fileContents;
  } else {
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(fileContents);
    } catch {
      throw new VppTokenFileError('not base64: the file is not text (invalid UTF-8)');
    }
  }
  // Editors and mail clients wrap long base64 lines; a header value cannot carry the breaks.
  const sToken = text.replace(/^\uFEFF/, '').replace(/\s+/g, '');
  if (sToken.length === 0) throw new VppTokenFileError('not base64: the file is empty');
  if (!BASE64.test(sToken) || sToken.length % 4 === 1) {
    const bad = [...sToken].find((c) => !/[A-Za-z0-9+/=]/.test(c));
    throw new VppTokenFileError(
      bad !== undefined
        ? `not base64: unexpected character ${JSON.stringify(bad)}`
        : 'not base64: malformed padding or length',
    );
  }

  let json: string;
  try {
    json = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(sToken, 'base64'));
  } catch {
    throw new VppTokenFileError('not JSON: the decoded base64 is not UTF-8 text');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (err) {
    throw new VppTokenFileError(`not JSON: ${(err as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new VppTokenFileError('not JSON object: the decoded content is not {token, expDate, orgName}');
  }
  const fields = parsed as Record<string, unknown>;
  const token = requireString(fields, 'token');
  const expDate = requireString(fields, 'expDate');
  const orgName = requireString(fields, 'orgName');
  if (token.trim().length === 0) throw new VppTokenFileError('empty field "token"');

  const expiresAt = parseExpDate(expDate);
  if (!expiresAt) throw new VppTokenFileError(`unparseable expDate ${JSON.stringify(expDate)}`);
  return { sToken, token, orgName, expiresAt };
}

function requireString(fields: Record<string, unknown>, name: string): string {
  const value = fields[name];
  if (value === undefined || value === null) throw new VppTokenFileError(`missing field "${name}"`);
  if (typeof value !== 'string') throw new VppTokenFileError(`field "${name}" is not a string`);
  return value;
}

/** ISO 8601 with a `+hhmm`, `+hh:mm` or `Z` offset; null when the date does not exist. */
export function parseExpDate(value: string): Date | null {
  const m = EXP_DATE.exec(value.trim());
  if (!m) return null;
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  const ms = frac ? Math.floor(Number(`0.${frac}`) * 1000) : 0;
  if (month < 1 || month > 12 || hour > 23 || minute > 59 || second > 59) return null;
  const local = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  // Date.UTC rolls 31 February over into March; a real expiry date never needs that.
  if (new Date(local).getUTCDate() !== day) return null;
  let offsetMinutes = 0;
  if (zone && zone !== 'Z') {
    const sign = zone.startsWith('-') ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    const oh = Number(digits.slice(0, 2));
    const om = Number(digits.slice(2, 4));
    if (oh > 23 || om > 59) return null;
    offsetMinutes = sign * (oh * 60 + om);
  }
  return new Date(local - offsetMinutes * 60_000);
}

/** Formats an expiry the way Apple writes it in token files (`+0000`). */
export function formatExpDate(at: Date): string {
  return at.toISOString().replace(/\.\d{3}Z$/, '+0000');
}

/** Builds a `.vpptoken` file's content; the result is also the sToken (the bearer). */
export function encodeVppToken(fields: { token: string; orgName: string; expiresAt: Date }): string {
  const json = JSON.stringify({
    token: fields.token,
    expDate: formatExpDate(fields.expiresAt),
    orgName: fields.orgName,
  });
  return Buffer.from(json, 'utf8').toString('base64');
}
