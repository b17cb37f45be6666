/** Terminal output of the admin CLI: language choice, display widths, aligned tables. */

export type Lang = 'ja' | 'en';

/** `--lang` wins; otherwise a LANG starting with `ja` means Japanese, anything else English. */
export function chooseLang(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): Lang {
  if (explicit !== undefined) return explicit.toLowerCase().startsWith('ja') ? 'ja' : 'en';
  return (env.LANG ?? '').startsWith('ja') ? 'ja' : 'en';
}

/**
 * The language before commander has parsed anything, so that help texts are already in it.
 * Only `--lang X` / `--lang=X` anywhere on the line and LANG are looked at.
 */
export function langFromArgv(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Lang {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--lang' && argv[i + 1] !== undefined) return chooseLang(argv[i + 1], env);
    if (arg.startsWith('--lang=')) return chooseLang(arg.slice('--lang='.length), env);
  }
  return chooseLang(undefined, env);
}

export interface Texts {
  ja: string;
  en: string;
}

export const pick = (lang: Lang, text: Texts): string => text[lang];

// eslint-disable-next-line no-control-regex -- ANSI escape sequences are control characters by definition
const ANSI = /\u001b\[[0-9;?]*[A-Za-z]/g;

/** Code points that a terminal draws two columns wide (East Asian Wide and Fullwidth, emoji). */
function isWide(cp: number): boolean {
  return (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0x303e) ||
    (cp >= 0x3041 && cp <= 0x33ff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0xa000 && cp <= 0xa4cf) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1f64f) ||
    (cp >= 0x1f900 && cp <= 0x1f9ff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  );
}

/** Combining marks, zero-width spaces/joiners and variation selectors take no column. */
function isZeroWidth(cp: number): boolean {
  return (
    (cp >= 0x0300 && cp <= 0x036f) ||
    (cp >= 0x200b && cp <= 0x200f) ||
    (cp >= 0xfe00 && cp <= 0xfe0f) ||
    cp === 0x3099 ||
    cp === 0x309a
  );
}

/** Columns the text takes in a terminal: CJK counts 2, escape sequences 0. */
export function displayWidth(text: string): number {
  let width = 0;
  for (const ch of text.replace(ANSI, '')) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x20 || isZeroWidth(cp)) continue;
    width += isWide(cp) ? 2 : 1;
  }
  return width;
}

export function padEnd(text: string, width: number): string {
  return text + ' '.repeat(Math.max(0, width - displayWidth(text)));
}

export function padStart(text: string, width: number): string {
  return ' '.repeat(Math.max(0, width - displayWidth(text))) + text;
}

export interface Column<T> {
  header: Texts;
  value: (row: T) => string | number | null | undefined;
  align?: 'left' | 'right';
}

/** An aligned table; numbers right-aligned, empty values as "-". */
export function table<T>(rows: readonly T[], columns: readonly Column<T>[], lang: Lang): string {
  if (rows.length === 0) return pick(lang, { ja: '（該当なし）', en: '(none)' });
  const cells = rows.map((row) =>
    columns.map((c) => {
      const v = c.value(row);
      return v === null || v === undefined || v === '' ? '-' : String(v);
    }),
  );
  const headers = columns.map((c) => pick(lang, c.header));
  const widths = columns.map((_, i) =>
    Math.max(displayWidth(headers[i]!), ...cells.map((r) => displayWidth(r[i]!))),
  );
  const line = (values: string[]) =>
    values
      .map((v, i) => (columns[i]!.align === 'right' ? padStart(v, widths[i]!) : padEnd(v, widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), widths.map((w) => '─'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

/** Label/value lines with the labels padded to one width. */
export function fields(pairs: readonly [Texts, string | number | null | undefined][], lang: Lang): string {
  const labels = pairs.map(([label]) => pick(lang, label));
  const width = Math.max(...labels.map(displayWidth));
  return pairs
    .map(
      ([, value], i) =>
        `${padEnd(labels[i]!, width)}  ${value === null || value === undefined || value === '' ? '-' : value}`,
    )
    .join('\n');
}

/** Local date and time to the second: what an administrator compares with the wall clock. */
export function when(iso: string | null | undefined): string {
  if (!iso) return '-';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '-';
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(0)} MB`;
  return `${Math.ceil(n / 1e3)} KB`;
}
