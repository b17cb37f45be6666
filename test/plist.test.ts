import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as oracleParse } from 'plist';
import { describe, expect, it } from 'vitest';
import {
  buildPlist,
  DEFAULT_MAX_PLIST_BYTES,
  parsePlist,
  parsePlistDict,
  PlistError,
  PlistReal,
  real,
} from '../src/mdm/plist.ts';
import type { PlistDict, PlistValue } from '../src/mdm/plist.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fixturesDir = path.resolve(repoRoot, '../shared/fixtures/mdm');

function listPlists(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) out.push(...listPlists(full));
    else if (name.endsWith('.plist')) out.push(full);
  }
  return out;
}

const fixtures = listPlists(fixturesDir);
const fixture = (rel: string): Buffer => readFileSync(path.join(fixturesDir, rel));

/** Makes parser outputs comparable: bytes as hex (Buffer vs Uint8Array), reals and bigints as numbers. */
function normalise(v: unknown): unknown {
  if (v instanceof Uint8Array) return { hex: Buffer.from(v).toString('hex') };
  if (v instanceof PlistReal) return v.value;
  if (typeof v === 'bigint') return Number(v);
  if (v instanceof Date) return v;
  if (Array.isArray(v)) return v.map(normalise);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normalise(x)]));
  }
  return v;
}

function plistError(fn: () => unknown): PlistError {
  try {
    fn();
  } catch (err) {
    if (err instanceof PlistError) return err;
    throw new Error(`expected a PlistError, got ${String(err)}`);
  }
  throw new Error('expected a PlistError, but nothing was thrown');
}

function expectPlistError(fn: () => unknown, message: RegExp): PlistError {
  const err = plistError(fn);
  expect(err.message).toMatch(message);
  return err;
}

const doc = (body: string): string =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n<plist version="1.0">\n${body}\n</plist>\n`;

function python(script: string, input?: string): string {
  return execFileSync('python3', ['-c', script], { input, encoding: 'utf8', timeout: 30_000 }).trim();
}

describe('fixtures', () => {
  it('finds the shared MDM fixtures', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(11);
  });

  for (const file of fixtures) {
    const rel = path.relative(fixturesDir, file);
    it(`${rel} parses like the plist package`, () => {
      const bytes = readFileSync(file);
      const text = bytes.toString('utf8');
      const ours = parsePlist(bytes);
      expect(normalise(parsePlist(text))).toEqual(normalise(ours));
      if (text.includes('AAAA=')) {
        // The plist package uses atob, which rejects surplus padding; with it removed the rest must agree.
        expect(() => oracleParse(text)).toThrow();
        expect(normalise(ours)).toEqual(normalise(oracleParse(text.replace('AAAA=', 'AAAA'))));
      } else {
        expect(normalise(ours)).toEqual(normalise(oracleParse(text)));
      }
    });
  }

  it('reads the TokenUpdate token as a Buffer with the known bytes', () => {
    const msg = parsePlistDict(fixture('nanomdm/TokenUpdate.1.plist'));
    expect(Buffer.isBuffer(msg.Token)).toBe(true);
    expect(Buffer.from(msg.Token as Uint8Array).toString('hex')).toBe(
      '47e8eec062c2f729ec1703c1b3e18f1971d85f00be76445d34080baa701b5f51',
    );
    expect(msg.AwaitingConfiguration).toBe(false);
    expect((msg.UnlockToken as Uint8Array).length).toBeGreaterThan(1000);
    const mac = parsePlistDict(fixture('nanomdm/TokenUpdate.2.plist'));
    expect(Buffer.from(mac.Token as Uint8Array).toString('hex')).toBe(
      '1ba7c90066c50f77689a24f3a425caf68a300f729e88e460a9416022d5d642cc',
    );
  });

  it('reads the 12021 error with its curly quotes', () => {
    const msg = parsePlistDict(fixture('micromdm/macos-10.11-error_invalid_request_type.plist'));
    expect(msg.Status).toBe('Error');
    const chain = msg.ErrorChain as PlistDict[];
    expect(chain).toHaveLength(1);
    expect(chain[0]?.ErrorCode).toBe(12021);
    expect(chain[0]?.ErrorDomain).toBe('MCMDMErrorDomain');
    expect(chain[0]?.USEnglishDescription).toBe('\u201cOSUpdateStatus\u201d is not a valid request type.');
  });

  it('reads reals, dates and booleans from the macOS DeviceInformation', () => {
    const msg = parsePlistDict(fixture('micromdm/macos-10.11-device_information.plist'));
    const q = msg.QueryResponses as PlistDict;
    expect(q.AvailableDeviceCapacity).toBe(60.977592468261719);
    expect(q.DeviceCapacity).toBe(464.82241058349609);
    expect(q.iTunesStoreAccountIsActive).toBe(true);
    const os = q.OSUpdateSettings as PlistDict;
    expect(os.PreviousScanDate).toEqual(new Date('2016-11-03T03:12:26Z'));
    expect(os.PreviousScanResult).toBe(0);
    const exact = parsePlistDict(fixture('micromdm/macos-10.11-device_information.plist'), {
      exactReals: true,
    });
    expect((exact.QueryResponses as PlistDict).DeviceCapacity).toEqual(new PlistReal(464.82241058349609));
  });

  it('decodes the redacted AAAA= token leniently, as plistlib does', () => {
    const msg = parsePlistDict(fixture('micromdm/macos-10.11-token_update_user.plist'));
    expect(Buffer.from(msg.Token as Uint8Array).toString('hex')).toBe('000000');
    const py = python(
      'import plistlib,sys; print(plistlib.loads(sys.stdin.buffer.read())["Token"].hex())',
      fixture('micromdm/macos-10.11-token_update_user.plist').toString('utf8'),
    );
    expect(py).toBe('000000');
  });

  it('keeps the leading space of the nanocmd error description', () => {
    const msg = parsePlistDict(fixture('nanocmd/resp-error.plist'));
    const first = (msg.ErrorChain as PlistDict[])[0];
    expect(first?.ErrorCode).toBe(-909);
    expect(first?.LocalizedDescription).toBe(' <NSOSStatusErrorDomain:-909>');
  });
});

describe('Python plistlib round trip', () => {
  const MAKE = String.raw`
import plistlib, os, sys, datetime
data = {
    'int': 42, 'zero': 0, 'neg': -7, 'big53': 2**53 + 1, 'big63': 2**63 - 1, 'min63': -2**63, 'u64': 2**64 - 1,
    'float': 1.5, 'float32': 32.0, 'negzero': -0.0, 'tiny': 5e-324, 'huge': 1.7976931348623157e308, 'third': 1/3,
    'nan': float('nan'), 'inf': float('inf'), 'ninf': float('-inf'),
    'yes': True, 'no': False,
    'ja': '日本語のアプリ & < > " \' 🍣 “引用” &amp; ]]>',
    'empty': '', 'spaces': '  two leading, tab\tand newline\n trailing  ',
    'bytes': os.urandom(32), 'nobytes': b'', 'longbytes': os.urandom(300),
    'date': datetime.datetime(2024, 2, 29, 23, 59, 58),
    'nested': {'list': [1, 'two', 3.0, [], {}, [{'deep': True, 'when': datetime.datetime(1999, 12, 31, 0, 0, 0)}]],
               'dict': {'a': {'b': {'c': 'd'}}}},
    'emptydict': {}, 'emptylist': [],
}
sys.stdout.write(plistlib.dumps(data).decode())
`;

  const COMPARE = String.raw`
import plistlib, sys, json, math
d = json.load(sys.stdin)
a = plistlib.loads(d['original'].encode())
b = plistlib.loads(d['ours'].encode())
def diff(x, y, p='$'):
    if type(x) is not type(y):
        return f'{p}: {type(x).__name__} became {type(y).__name__}'
    if isinstance(x, dict):
        if set(x) != set(y):
            return f'{p}: keys {sorted(set(x) ^ set(y))} differ'
        for k in x:
            r = diff(x[k], y[k], f'{p}.{k}')
            if r: return r
        return None
    if isinstance(x, list):
        if len(x) != len(y): return f'{p}: length {len(x)} became {len(y)}'
        for i, (u, v) in enumerate(zip(x, y)):
            r = diff(u, v, f'{p}[{i}]')
            if r: return r
        return None
    if isinstance(x, float) and math.isnan(x):
        return None if math.isnan(y) else f'{p}: nan became {y!r}'
    if isinstance(x, float) and x == 0 and math.copysign(1, x) != math.copysign(1, y):
        return f'{p}: sign of zero lost'
    return None if x == y else f'{p}: {x!r} became {y!r}'
problem = diff(a, b)
a.pop('nan'); b.pop('nan')
if not problem and a != b:
    problem = 'not equal'
print(problem or 'OK')
`;

  it('parses plistlib output with the right JS types', () => {
    const original = python(MAKE);
    const v = parsePlistDict(original, { exactReals: true });
    expect(v.int).toBe(42);
    expect(v.neg).toBe(-7);
    expect(v.big53).toBe(2n ** 53n + 1n);
    expect(v.big63).toBe(2n ** 63n - 1n);
    expect(v.min63).toBe(-(2n ** 63n));
    expect(v.u64).toBe(2n ** 64n - 1n);
    expect(v.float).toEqual(real(1.5));
    expect(v.float32).toEqual(real(32));
    expect((v.nan as PlistReal).value).toBeNaN();
    expect(v.inf).toEqual(real(Infinity));
    expect(v.ninf).toEqual(real(-Infinity));
    expect(v.yes).toBe(true);
    expect(v.ja).toBe('日本語のアプリ & < > " \' 🍣 “引用” &amp; ]]>');
    expect(v.empty).toBe('');
    expect(v.spaces).toBe('  two leading, tab\tand newline\n trailing  ');
    expect((v.bytes as Uint8Array).length).toBe(32);
    expect((v.nobytes as Uint8Array).length).toBe(0);
    expect(v.date).toEqual(new Date('2024-02-29T23:59:58Z'));
    expect(v.emptydict).toEqual({});
    expect(v.emptylist).toEqual([]);
    const plain = parsePlistDict(original);
    expect(plain.float32).toBe(32);
    expect(plain.big53).toBe(2n ** 53n + 1n);
  });

  it('parse → build gives plistlib back equal values of the same types', () => {
    const original = python(MAKE);
    const ours = buildPlist(parsePlist(original, { exactReals: true }));
    expect(python(COMPARE, JSON.stringify({ original, ours }))).toBe('OK');
  });

  it('the comparison notices a lost float type', () => {
    // Without exactReals 32.0 comes back as a JS integer and is written as <integer>: the check must see it.
    const original = python(MAKE);
    const ours = buildPlist(parsePlist(original));
    expect(python(COMPARE, JSON.stringify({ original, ours }))).toMatch(/float32: float became int/);
  });

  it('an InstallApplication command loads in plistlib with the right types', () => {
    const xml = buildPlist({
      CommandUUID: '0F7C2E1A-5B7D-4C1E-9F3A-2D6B8E4A1C55',
      Command: {
        RequestType: 'InstallApplication',
        iTunesStoreID: 361309726,
        Options: { PurchaseMethod: 1 },
        ManagementFlags: 1,
        ChangeManagementState: 'Managed',
        InstallAsManaged: true,
        Attributes: { VPNUUID: undefined as unknown as PlistValue },
      },
    });
    const out = python(
      String.raw`
import plistlib, sys, json
p = plistlib.loads(sys.stdin.buffer.read())
c = p['Command']
print(json.dumps({k: [type(v).__name__, v if not isinstance(v, (bytes, dict)) else None] for k, v in c.items()}
                 | {'Options.PurchaseMethod': [type(c['Options']['PurchaseMethod']).__name__, c['Options']['PurchaseMethod']]}
                 | {'CommandUUID': [type(p['CommandUUID']).__name__, p['CommandUUID']]}, sort_keys=True))
`,
      xml,
    );
    expect(JSON.parse(out)).toEqual({
      Attributes: ['dict', null],
      ChangeManagementState: ['str', 'Managed'],
      CommandUUID: ['str', '0F7C2E1A-5B7D-4C1E-9F3A-2D6B8E4A1C55'],
      InstallAsManaged: ['bool', true],
      ManagementFlags: ['int', 1],
      Options: ['dict', null],
      'Options.PurchaseMethod': ['int', 1],
      RequestType: ['str', 'InstallApplication'],
      iTunesStoreID: ['int', 361309726],
    });
  });
});

describe('safety and malformed input', () => {
  it('refuses a classic XXE without reading the file', () => {
    const xxe = `<?xml version="1.0"?><!DOCTYPE plist [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><plist version="1.0"><dict><key>UDID</key><string>&xxe;</string></dict></plist>`;
    const err = expectPlistError(() => parsePlist(xxe), /internal subset/);
    expect(err.message).not.toMatch(/root:/);
    expect(err.offset).toBe(xxe.indexOf('['));
  });

  it('refuses a billion-laughs document at once', () => {
    const lol = [
      '<?xml version="1.0"?>',
      '<!DOCTYPE lolz [',
      '<!ENTITY lol "lol">',
      ...Array.from(
        { length: 9 },
        (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i === 0 ? '' : i};`.repeat(10)}">`,
      ),
      ']>',
      '<plist version="1.0"><string>&lol9;</string></plist>',
    ].join('\n');
    const started = performance.now();
    expectPlistError(() => parsePlist(lol), /DOCTYPE with an internal subset/);
    expect(performance.now() - started).toBeLessThan(50);
  });

  it('refuses entity declarations anywhere and unknown entity references', () => {
    expectPlistError(() => parsePlist(doc('<!ENTITY x "y"><string>&x;</string>')), /entity declarations/);
    expectPlistError(
      () => parsePlist('<!ENTITY x "y"><plist><string>&x;</string></plist>'),
      /entity declarations/,
    );
    expectPlistError(() => parsePlist(doc('<string>a &foo; b</string>')), /unknown entity "&foo;"/);
    expectPlistError(() => parsePlist(doc('<string>a & b</string>')), /unterminated reference/);
    expectPlistError(() => parsePlist(doc('<string>&#0;</string>')), /invalid character reference/);
    expectPlistError(() => parsePlist(doc('<string>&#xD800;</string>')), /invalid character reference/);
    expectPlistError(() => parsePlist(doc('<string>&#x110000;</string>')), /invalid character reference/);
    expectPlistError(() => parsePlist(doc('<string>&#X41;</string>')), /invalid character reference/);
    expectPlistError(() => parsePlist(doc('<string>&#;</string>')), /invalid character reference/);
  });

  it('refuses a DOCTYPE in the wrong place or twice', () => {
    expectPlistError(
      () => parsePlist(`<!DOCTYPE plist><!DOCTYPE plist><plist><true/></plist>`),
      /more than one DOCTYPE/,
    );
    expectPlistError(
      () => parsePlist(`<plist><!DOCTYPE plist><true/></plist>`),
      /only allowed before <plist>/,
    );
  });

  it('checks the size limit before looking at the content', () => {
    // Garbage that is also too big must be refused for its size, proving no parsing happened first.
    expectPlistError(() => parsePlist('<'.repeat(101), { maxBytes: 100 }), /limit of 100 bytes/);
    expectPlistError(
      () => parsePlist(Buffer.from('<'.repeat(101)), { maxBytes: 100 }),
      /101 bytes exceeds the limit of 100/,
    );
    // The limit counts UTF-8 bytes, not UTF-16 units: 40 × "あ" is 120 bytes.
    const ja = doc(`<string>${'あ'.repeat(40)}</string>`);
    expect(() => parsePlist(ja, { maxBytes: Buffer.byteLength(ja) })).not.toThrow();
    expectPlistError(() => parsePlist(ja, { maxBytes: Buffer.byteLength(ja) - 1 }), /exceeds the limit/);
    expectPlistError(
      () => parsePlist(Buffer.from(ja), { maxBytes: Buffer.byteLength(ja) - 1 }),
      /exceeds the limit/,
    );
    expect(DEFAULT_MAX_PLIST_BYTES).toBe(10 * 1024 * 1024);
    const big = doc(`<string>${'x'.repeat(DEFAULT_MAX_PLIST_BYTES)}</string>`);
    expectPlistError(() => parsePlist(big), /limit of 10485760 bytes/);
  });

  it('refuses every truncation of a real TokenUpdate', () => {
    const text = fixture('nanomdm/TokenUpdate.1.plist').toString('utf8');
    const complete = text.lastIndexOf('</plist>') + '</plist>'.length;
    for (let cut = 0; cut < complete; cut++) {
      const err = plistError(() => parsePlist(text.slice(0, cut)));
      expect(err.message.length).toBeGreaterThan(0);
    }
    expect(parsePlist(text.slice(0, complete))).toBeTypeOf('object');
  });

  it('throws only PlistError on randomly damaged input', () => {
    const base = fixture('micromdm/macos-10.11-device_information.plist');
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const alphabet = Buffer.from('<>/&;#![]"\'=x \n\u00e9\u3042');
    let refused = 0;
    for (let round = 0; round < 2000; round++) {
      const bytes = Buffer.from(base);
      for (let k = 0; k <= rand(3); k++) bytes[rand(bytes.length)] = alphabet[rand(alphabet.length)] ?? 0;
      try {
        parsePlist(bytes);
      } catch (err) {
        if (!(err instanceof PlistError)) throw err;
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(500);
  });

  it('bounds nesting depth instead of overflowing the stack', () => {
    const deep = `<plist>${'<array>'.repeat(100_000)}${'</array>'.repeat(100_000)}</plist>`;
    expectPlistError(() => parsePlist(deep), /nesting deeper than/);
    const ok = `<plist>${'<array>'.repeat(100)}${'</array>'.repeat(100)}</plist>`;
    expect(parsePlist(ok)).toBeInstanceOf(Array);
  });

  it('refuses mismatched, unclosed and unknown tags', () => {
    expectPlistError(
      () => parsePlist(doc('<dict><key>a</key><string>x</dict>')),
      /unexpected "<\/dict>" inside <string>/,
    );
    expectPlistError(
      () => parsePlist(doc('<array><string>a</string></dict>')),
      /expected a value, found <\/dict>/,
    );
    expectPlistError(
      () => parsePlist(doc('<dict><key>a</key><string>x</string>')),
      /expected <key> or <\/dict> in <dict>, found <\/plist>/,
    );
    expectPlistError(
      () => parsePlist('<plist><dict><key>Status</key>'),
      /end of input, expected the value of key "Status"/,
    );
    expectPlistError(() => parsePlist('<plist><array>'), /end of input/);
    expectPlistError(() => parsePlist('<plist><string>abc'), /unclosed <string>/);
    expectPlistError(() => parsePlist(doc('<foo/>')), /unknown element <foo>/);
    expectPlistError(
      () => parsePlist(doc('<dict><key>a</key><strin>x</strin></dict>')),
      /unknown element <strin>/,
    );
    expectPlistError(() => parsePlist(doc('<string>a<b>c</b></string>')), /inside <string>/);
    expectPlistError(() => parsePlist(doc('<true>yes</true>')), /<true> must be empty/);
    expectPlistError(() => parsePlist(doc('<key>a</key>')), /<key> outside a dict/);
  });

  it('reports the byte offset of the problem', () => {
    const text = doc('<dict><key>名前</key><string>é</string><key>x</key><bogus/></dict>');
    const err = expectPlistError(() => parsePlist(text), /unknown element <bogus>/);
    expect(err.offset).toBe(Buffer.from(text).indexOf('<bogus/>'));
    expect(err.message).toContain(`(at byte ${err.offset})`);
  });

  it('refuses a dict with two keys in a row, a duplicate key or a key without value', () => {
    expectPlistError(
      () => parsePlist(doc('<dict><key>a</key><key>b</key><string>x</string></dict>')),
      /two keys in a row: key "a"/,
    );
    expectPlistError(
      () => parsePlist(doc('<dict><key>a</key></dict>')),
      /expected the value of key "a", found <\/dict>/,
    );
    expectPlistError(() => parsePlist(doc('<dict><string>x</string></dict>')), /expected <key> or <\/dict>/);
    expectPlistError(
      () =>
        parsePlist(doc('<dict><key>UDID</key><string>a</string><key>UDID</key><string>b</string></dict>')),
      /duplicate key "UDID"/,
    );
  });

  it('refuses bad structure around the root', () => {
    expectPlistError(() => parsePlist(''), /empty input/);
    expectPlistError(() => parsePlist('  \n '), /empty input/);
    expectPlistError(() => parsePlist(Buffer.alloc(0)), /empty input/);
    expectPlistError(() => parsePlist('<?xml version="1.0"?>'), /empty input/);
    expectPlistError(() => parsePlist('<plist version="1.0"></plist>'), /holds no value/);
    expectPlistError(() => parsePlist('<plist version="1.0"/>'), /holds no value/);
    expectPlistError(
      () => parsePlist('<plist><true/><false/></plist>'),
      /expected <\/plist> after the root value/,
    );
    expectPlistError(() => parsePlist('<plist><true/></plist><plist><true/></plist>'), /trailing content/);
    expectPlistError(() => parsePlist('<plist><true/></plist>junk'), /trailing content/);
    expectPlistError(() => parsePlist('<dict></dict>'), /expected <plist>, found <dict>/);
    expectPlistError(() => parsePlist('hello'), /unexpected text "hello"/);
    expectPlistError(
      () => parsePlist('<plist>text<true/></plist>'),
      /unexpected text "text<true\/><\/plist>"/,
    );
  });

  it('refuses bad integers', () => {
    for (const bad of ['12a', '1.5', '', ' ', '0x10', '--1', '+', '1e3', '１２']) {
      expectPlistError(() => parsePlist(doc(`<integer>${bad}</integer>`)), /invalid <integer>/);
    }
    expectPlistError(() => parsePlist(doc('<integer/>')), /empty <integer\/>/);
    expectPlistError(
      () => parsePlist(doc('<integer>18446744073709551616</integer>')),
      /outside the 64-bit range/,
    );
    expectPlistError(
      () => parsePlist(doc('<integer>-9223372036854775809</integer>')),
      /outside the 64-bit range/,
    );
    expectPlistError(
      () => parsePlist(doc(`<integer>${'9'.repeat(100_000)}</integer>`)),
      /outside the 64-bit range/,
    );
  });

  it('refuses bad reals and dates', () => {
    for (const bad of ['', 'abc', '1.2.3', '1e', '.', '0x1p3', 'Infinityx', '1,5']) {
      expectPlistError(() => parsePlist(doc(`<real>${bad}</real>`)), /invalid <real>/);
    }
    for (const bad of [
      '2024-13-01T00:00:00Z',
      '2024-02-30T00:00:00Z',
      '2023-02-29T00:00:00Z',
      '2024-01-01',
      '2024-01-01T24:00:00Z',
      '2024-01-01T00:00:60Z',
      '2024-01-01T00:00:00',
      '2024-01-01T00:00:00+09:00',
      '2024-01-01 00:00:00Z',
      'yesterday',
    ]) {
      expectPlistError(() => parsePlist(doc(`<date>${bad}</date>`)), /invalid <date>/);
    }
    expectPlistError(() => parsePlist(doc('<date/>')), /empty <date\/>/);
  });

  it('refuses bad base64', () => {
    expectPlistError(
      () => parsePlist(doc('<data>ab$c</data>')),
      /invalid base64 in <data>: unexpected character "\$"/,
    );
    expectPlistError(() => parsePlist(doc('<data>YWJj-_</data>')), /unexpected character "-"/);
    expectPlistError(() => parsePlist(doc('<data>A</data>')), /single leftover/);
    expectPlistError(() => parsePlist(doc('<data>AAAAA</data>')), /single leftover/);
    expectPlistError(() => parsePlist(doc('<data>AA==AA==</data>')), /data after "=" padding/);
    expectPlistError(() => parsePlist(doc('<data>AAAA===</data>')), /more than two/);
  });

  it('refuses binary plists, invalid UTF-8 and other declared encodings', () => {
    const bplist = Buffer.concat([Buffer.from('bplist00'), Buffer.from([0xd1, 0x01, 0x02, 0x51, 0x61])]);
    expectPlistError(() => parsePlist(bplist), /binary plists are not accepted/);
    expectPlistError(() => parsePlist('bplist00\u00d1'), /binary plists are not accepted/);
    expectPlistError(() => parsePlist(Buffer.from([0x3c, 0x70, 0xff, 0xfe])), /not valid UTF-8/);
    const utf16 = Buffer.from('<?xml version="1.0" encoding="UTF-16"?><plist><true/></plist>');
    expectPlistError(() => parsePlist(utf16), /only UTF-8 is accepted/);
  });

  it('parsePlistDict refuses a top level that is not a dict', () => {
    expectPlistError(() => parsePlistDict(doc('<array/>')), /top-level value is an array, expected a dict/);
    expectPlistError(() => parsePlistDict(doc('<string>x</string>')), /top-level value is a string/);
    expectPlistError(() => parsePlistDict(doc('<data>AAAA</data>')), /top-level value is data/);
    expect(parsePlistDict(doc('<dict/>'))).toEqual({});
  });

  it('stores a __proto__ key as data, never as a prototype', () => {
    const v = parsePlistDict(doc('<dict><key>__proto__</key><dict><key>polluted</key><true/></dict></dict>'));
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
    expect(Object.keys(v)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((v as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('accepted forms', () => {
  it('decodes predefined entities and character references', () => {
    const v = parsePlist(doc('<string>&lt;&gt;&amp;&quot;&apos; &#8220;x&#x201D; &#x1F363;&#65;</string>'));
    expect(v).toBe('<>&"\' \u201cx\u201d 🍣A');
  });

  it('handles empty forms', () => {
    const v = parsePlistDict(
      doc(
        '<dict><key>s</key><string/><key>s2</key><string></string><key>d</key><data/><key>d2</key><data>\n\t</data>' +
          '<key>a</key><array/><key>a2</key><array></array><key>o</key><dict/><key/><true/><key>t</key><true></true></dict>',
      ),
    );
    expect(v).toEqual({
      s: '',
      s2: '',
      d: Buffer.alloc(0),
      d2: Buffer.alloc(0),
      a: [],
      a2: [],
      o: {},
      '': true,
      t: true,
    });
    expect(Buffer.isBuffer(v.d)).toBe(true);
  });

  it('keeps whitespace inside strings, ignores it between elements, normalises CRLF like XML', () => {
    const v = parsePlistDict(
      doc('\r\n\t<dict>\r\n\t\t<key> k </key>\r\n <string>  a\r\nb\rc &#13; </string>  </dict > \r\n'),
    );
    expect(v).toEqual({ ' k ': '  a\nb\nc \r ' });
  });

  it('skips comments and processing instructions, reads CDATA', () => {
    const v = parsePlistDict(
      `\uFEFF<?xml version="1.0" encoding="utf-8"?>\n<!-- before --><!DOCTYPE plist SYSTEM "x[y].dtd"><plist version="1.0"><!-- c -->
      <dict><!-- c --><key>a<!-- c -->b</key><string>x<![CDATA[<&amp;>]]>y</string><key>n</key><integer> +7 </integer></dict></plist>
      <!-- after --><?pi?>`,
    );
    expect(v).toEqual({ ab: 'x<&amp;>y', n: 7 });
    expect(parsePlist(Buffer.from(`\uFEFF${doc('<true/>')}`))).toBe(true);
  });

  it('reads integers, reals and dates at their edges', () => {
    const v = parsePlist(
      doc(
        '<array><integer>-0</integer><integer>9007199254740991</integer><integer>9007199254740992</integer>' +
          '<integer>-9223372036854775808</integer><integer>0000000000000000000000042</integer>' +
          '<real>NaN</real><real>-INF</real><real>+infinity</real><real>1E3</real><real>.5</real><real>5.</real><real>-2.5e-3</real>' +
          '<date>0001-01-01T00:00:00Z</date><date>2024-02-29T12:34:56Z</date></array>',
      ),
    ) as PlistValue[];
    expect(Object.is(v[0], 0)).toBe(true);
    expect(v[1]).toBe(Number.MAX_SAFE_INTEGER);
    expect(v[2]).toBe(2n ** 53n);
    expect(v[3]).toBe(-(2n ** 63n));
    expect(v[4]).toBe(42);
    expect(v[5]).toBeNaN();
    expect(v.slice(6, 12)).toEqual([-Infinity, Infinity, 1000, 0.5, 5, -0.0025]);
    expect((v[12] as Date).toISOString()).toBe('0001-01-01T00:00:00.000Z');
    expect((v[13] as Date).toISOString()).toBe('2024-02-29T12:34:56.000Z');
  });

  it('decodes base64 with whitespace, missing padding and surplus padding', () => {
    const hex = (b64: string): string =>
      Buffer.from(parsePlist(doc(`<data>${b64}</data>`)) as Uint8Array).toString('hex');
    expect(hex('\n\tAAEC\n\tAwQF\r\n ')).toBe('000102030405');
    expect(hex('AAECAw')).toBe('00010203');
    expect(hex('AAECAw==')).toBe('00010203');
    expect(hex('AAECAwQ')).toBe('0001020304');
    expect(hex('AAAA=')).toBe('000000');
    expect(hex('AAAA ==\n')).toBe('000000');
  });
});

describe('buildPlist', () => {
  it('writes a standard document with tab indentation', () => {
    expect(buildPlist({ a: [1, 'x'], b: {} })).toBe(
      '<?xml version="1.0" encoding="UTF-8"?>\n' +
        '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n' +
        '<plist version="1.0">\n<dict>\n\t<key>a</key>\n\t<array>\n\t\t<integer>1</integer>\n\t\t<string>x</string>\n' +
        '\t</array>\n\t<key>b</key>\n\t<dict/>\n</dict>\n</plist>\n',
    );
  });

  it('names the key path of a null or unsupported value', () => {
    const bad = (v: unknown): PlistValue => v as PlistValue;
    expectPlistError(
      () => buildPlist({ Command: { Options: { PurchaseMethod: bad(null) } } }),
      /null cannot be written to a plist at Command\.Options\.PurchaseMethod$/,
    );
    expectPlistError(() => buildPlist({ List: [1, bad(null)] }), /at List\[1\]$/);
    expectPlistError(
      () => buildPlist({ a: [{ f: bad(() => 1) }] }),
      /a function cannot be written to a plist at a\[0\]\.f$/,
    );
    expectPlistError(
      () => buildPlist({ s: bad(Symbol('x')) }),
      /a symbol cannot be written to a plist at s$/,
    );
    expectPlistError(() => buildPlist({ m: bad(new Map()) }), /a Map cannot be written to a plist at m$/);
    expectPlistError(
      () => buildPlist({ a: [bad(undefined)] }),
      /undefined cannot be written to a plist at a\[0\]$/,
    );
    expectPlistError(() => buildPlist(bad(null)), /at the top level$/);
    expectPlistError(() => buildPlist({ d: new Date(NaN) }), /invalid Date at d$/);
    expectPlistError(() => buildPlist({ s: 'bell\u0007' }), /control character U\+0007 at s$/);
    expectPlistError(() => buildPlist({ s: 'half \ud83c' }), /lone surrogate at s$/);
    const loop: PlistDict = { a: 1 };
    loop.self = { back: loop };
    expectPlistError(() => buildPlist(loop), /circular reference at self\.back$/);
  });

  it('skips keys whose value is undefined', () => {
    const xml = buildPlist({
      a: 1,
      b: undefined as unknown as PlistValue,
      c: { d: undefined as unknown as PlistValue },
    });
    expect(xml).not.toContain('<key>b</key>');
    expect(parsePlist(xml)).toEqual({ a: 1, c: {} });
  });

  it('escapes text so that it round-trips exactly', () => {
    const nasty = ' a & b < c > d "e" \'f\' ]]> &amp; \r\n\t 日本語 🍣 \u201c\u201d ';
    const xml = buildPlist({ [nasty]: nasty, '<key>': [nasty] });
    expect(xml).toContain('&amp;amp;');
    expect(xml).toContain('&#13;');
    expect(parsePlist(xml)).toEqual({ [nasty]: nasty, '<key>': [nasty] });
    expect(oracleParse(xml)).toEqual({ [nasty]: nasty, '<key>': [nasty] });
  });

  it('writes numbers, bigints and reals with the types Python expects', () => {
    const xml = buildPlist([
      32,
      -7,
      1.5,
      real(32),
      real(-0),
      real(1e21),
      NaN,
      Infinity,
      -Infinity,
      2n ** 63n - 1n,
      -(2n ** 63n),
      2n ** 64n - 1n,
      2 ** 60,
      1e300,
    ]);
    const lines = xml.split('\n').filter((l) => l.startsWith('\t<'));
    expect(lines.map((l) => l.trim())).toEqual([
      '<integer>32</integer>',
      '<integer>-7</integer>',
      '<real>1.5</real>',
      '<real>32.0</real>',
      '<real>-0.0</real>',
      '<real>1e+21</real>',
      '<real>nan</real>',
      '<real>inf</real>',
      '<real>-inf</real>',
      '<integer>9223372036854775807</integer>',
      '<integer>-9223372036854775808</integer>',
      '<integer>18446744073709551615</integer>',
      '<integer>1152921504606846976</integer>',
      '<real>1e+300</real>',
    ]);
    const types = python(
      'import plistlib,sys; print(" ".join(type(x).__name__ for x in plistlib.loads(sys.stdin.buffer.read())))',
      xml,
    );
    expect(types).toBe('int int float float float float float float float int int int int float');
    expectPlistError(() => buildPlist({ n: 2n ** 64n }), /outside the 64-bit range at n$/);
    expect(parsePlist(buildPlist(2n ** 63n - 1n))).toBe(2n ** 63n - 1n);
  });

  it('writes dates in UTC without milliseconds and data as base64', () => {
    const bytes = Buffer.from(Array.from({ length: 100 }, (_, i) => i));
    const xml = buildPlist({
      when: new Date('2024-05-06T07:08:09.999+09:00'),
      blob: bytes,
      small: new Uint8Array([1, 2, 3]),
    });
    expect(xml).toContain('<date>2024-05-05T22:08:09Z</date>');
    expect(xml).toContain('<data>AQID</data>');
    const v = parsePlistDict(xml);
    expect(v.when).toEqual(new Date('2024-05-05T22:08:09Z'));
    expect(Buffer.from(v.blob as Uint8Array).equals(bytes)).toBe(true);
    // A Uint8Array view into a larger buffer must write only its own bytes.
    const view = new Uint8Array(bytes.buffer, bytes.byteOffset + 10, 3);
    expect(buildPlist(view)).toContain('<data>CgsM</data>');
  });

  it('round-trips random documents through build and parse', () => {
    let seed = 7;
    const rand = (n: number): number => {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      return seed % n;
    };
    const pieces = ['a', 'ß', '日本', '🍣', '&', '<', '>', ' ', '\n', '\t', ']]>', '"', '\r'];
    const gen = (depth: number): PlistValue => {
      switch (rand(depth > 3 ? 8 : 10)) {
        case 0:
          return Array.from({ length: rand(4) }, () => pieces[rand(pieces.length)]).join('');
        case 1:
          return rand(2 ** 31) - 2 ** 30;
        case 2:
          return BigInt(rand(2 ** 31)) * 2n ** 32n + 2n ** 60n;
        case 3:
          return real(rand(1000) / 8);
        case 4:
          return rand(2) === 0;
        case 5:
          return new Date(rand(2 ** 31) * 1000);
        case 6:
          return Buffer.from(Array.from({ length: rand(40) }, () => rand(256)));
        case 7:
          return `s${rand(100)}`;
        case 8:
          return Array.from({ length: rand(4) }, () => gen(depth + 1));
        default: {
          const o: PlistDict = {};
          for (let i = rand(5); i > 0; i--) o[`k${rand(50)}${pieces[rand(pieces.length)]}`] = gen(depth + 1);
          return o;
        }
      }
    };
    for (let i = 0; i < 300; i++) {
      const value = gen(0);
      expect(parsePlist(buildPlist(value), { exactReals: true })).toEqual(value);
    }
  });
});
