/**
 * Parse and build throughput of haishin's plist codec against the `plist` package.
 * Run: node --import tsx bench/plist.bench.ts   (not a test; numbers are relative to the machine)
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build as oracleBuild, parse as oracleParse } from 'plist';
import { buildPlist, parsePlist } from '../src/mdm/plist.ts';
import type { PlistDict, PlistValue } from '../src/mdm/plist.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fixturesDir = path.resolve(repoRoot, '../shared/fixtures/mdm');

const SECONDS_PER_RUN = Number(process.env.BENCH_SECONDS ?? 1);

interface Case {
  name: string;
  xml: string;
  value: PlistValue;
}

function errorReport(): PlistDict {
  // A VPP failure as an iPad reports it in Japanese: MDMErrorDomain 12064 wrapping DeviceManagement 2605.
  return {
    CommandUUID: '6B1A2F0C-7D44-4E55-9A61-3C2B8D9E0F17',
    ErrorChain: [
      {
        ErrorCode: 12064,
        ErrorDomain: 'MDMErrorDomain',
        LocalizedDescription:
          '“Keynote”をインストールできませんでした。App とブックのライセンスが割り当てられていません。',
        USEnglishDescription: 'Could not install “Keynote” because no license was assigned (Apps & Books).',
      },
      {
        ErrorCode: 2605,
        ErrorDomain: 'com.apple.devicemanagement.error',
        LocalizedDescription: 'ライセンスが見つかりません。管理者に連絡してください。<サポート番号: 2605>',
        USEnglishDescription: 'The license could not be found. Contact your administrator & try again.',
      },
    ],
    RequestType: 'InstallApplication',
    Status: 'Error',
    UDID: '00008103-001A2B3C4D5E6F70',
  };
}

function installedApplicationList(count: number): PlistDict {
  const apps: PlistDict[] = [];
  for (let i = 0; i < count; i++) {
    apps.push({
      AppStoreVendable: i % 3 === 0,
      BundleSize: 48_000_000 + i * 7919,
      DeviceBasedVPP: i % 2 === 0,
      DynamicSize: 1_200_000 + i * 31,
      ExternalVersionIdentifier: 860_000_000 + i,
      HasUpdateAvailable: i % 17 === 0,
      Identifier: `com.example.vendor${i % 40}.app${i}`,
      Installing: false,
      IsValidated: true,
      Name: i % 4 === 0 ? `業務アプリ ${i}` : `Example App ${i}`,
      ShortVersion: `${1 + (i % 9)}.${i % 13}.${i % 5}`,
      Version: String(1000 + i),
    });
  }
  return {
    CommandUUID: '2C9E5D1B-8F3A-4B7C-A1E2-5F6D7C8B9A0E',
    InstalledApplicationList: apps,
    Status: 'Acknowledged',
    UDID: '00008103-001A2B3C4D5E6F70',
  };
}

function opsPerSecond(fn: () => unknown): number {
  // Warm up so both libraries run optimised code, then count whole iterations in the time budget.
  const warmUntil = performance.now() + 200;
  while (performance.now() < warmUntil) fn();
  let iterations = 0;
  const start = performance.now();
  const end = start + SECONDS_PER_RUN * 1000;
  let now = start;
  while (now < end) {
    for (let i = 0; i < 10; i++) fn();
    iterations += 10;
    now = performance.now();
  }
  return (iterations * 1000) / (now - start);
}

function fmt(n: number): string {
  return n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1);
}

const tokenXml = readFileSync(path.join(fixturesDir, 'nanomdm/TokenUpdate.1.plist'), 'utf8');
const reportValue = errorReport();
const listValue = installedApplicationList(300);
const cases: Case[] = [
  { name: 'TokenUpdate', xml: tokenXml, value: parsePlist(tokenXml) },
  { name: 'Error report (ErrorChain, ja)', xml: buildPlist(reportValue), value: reportValue },
  { name: 'InstalledApplicationList ×300', xml: buildPlist(listValue), value: listValue },
];

// The plist package's types describe its own value model; ours is structurally compatible.
type OracleValue = Parameters<typeof oracleBuild>[0];

const rows: string[][] = [
  ['case', 'KB', 'parse haishin/s', 'parse plist/s', 'ratio', 'build haishin/s', 'build plist/s', 'ratio'],
];
for (const c of cases) {
  const kb = (Buffer.byteLength(c.xml) / 1024).toFixed(1);
  const ph = opsPerSecond(() => parsePlist(c.xml));
  const po = opsPerSecond(() => oracleParse(c.xml));
  const bh = opsPerSecond(() => buildPlist(c.value));
  const bo = opsPerSecond(() => oracleBuild(c.value as OracleValue));
  rows.push([
    c.name,
    kb,
    fmt(ph),
    fmt(po),
    `${(ph / po).toFixed(1)}×`,
    fmt(bh),
    fmt(bo),
    `${(bh / bo).toFixed(1)}×`,
  ]);
  if (Buffer.byteLength(c.xml) > 100_000) {
    rows.push([
      '  ms per op',
      '',
      (1000 / ph).toFixed(2),
      (1000 / po).toFixed(2),
      '',
      (1000 / bh).toFixed(2),
      (1000 / bo).toFixed(2),
      '',
    ]);
  }
}

const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
for (const [n, row] of rows.entries()) {
  console.log(
    row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '),
  );
  if (n === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
}
console.log(`\nNode ${process.version}, ${SECONDS_PER_RUN}s per measurement (BENCH_SECONDS to change).`);
