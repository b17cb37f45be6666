// What a V8 heap snapshot holds, by constructor: the self sizes of its objects summed per
// (type, name), biggest first — for bench/scale.bench.ts's SCALE_HEAP_SNAPSHOT (what serve keeps
// per enrolled device). Reads the whole snapshot: give node a heap several times its size.
//
//   node --max-old-space-size=8192 --import tsx bench/support/heap-summary.ts <file.heapsnapshot> [top] [group]
// With a group (as printed, e.g. "native system / JSArrayBufferData"), also what holds its objects:
// the chains of five retainers above them (with the property that holds each), by the bytes they hold.
import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: {
    meta: {
      node_fields: string[];
      node_types: [string[], ...unknown[]];
      edge_fields: string[];
      edge_types: [string[], ...unknown[]];
    };
    node_count: number;
  };
  nodes: number[];
  edges: number[];
  strings: string[];
}

const [file, topText, wanted] = process.argv.slice(2);
if (!file) throw new Error('usage: heap-summary.ts <file.heapsnapshot> [top]');
const top = Number(topText ?? 30);
const snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
const fields = snap.snapshot.meta.node_fields;
const types = snap.snapshot.meta.node_types[0];
const [TYPE, NAME, SIZE] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f)) as [
  number,
  number,
  number,
];
const width = fields.length;
const groups = new Map<string, { count: number; bytes: number }>();
/** A node's group: strings and code by type (their "names" are their contents), others by name. */
const groupOf = (i: number): string => {
  const type = types[snap.nodes[i + TYPE]!]!;
  return ['object', 'closure', 'native'].includes(type)
    ? `${type} ${snap.strings[snap.nodes[i + NAME]!]!.slice(0, 80)}`.replace(/\s+/g, ' ')
    : type;
};
let total = 0;
for (let i = 0; i < snap.nodes.length; i += width) {
  const size = snap.nodes[i + SIZE]!;
  total += size;
  const name = groupOf(i);
  const g = groups.get(name) ?? { count: 0, bytes: 0 };
  g.count++;
  g.bytes += size;
  groups.set(name, g);
}
console.log(`${(total / 2 ** 20).toFixed(1)} MB in ${snap.nodes.length / width} objects`);
for (const [name, g] of [...groups].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, top))
  console.log(`${(g.bytes / 2 ** 20).toFixed(1).padStart(8)} MB ${String(g.count).padStart(9)}  ${name}`);

if (wanted) {
  // Reverse edges (strong ones only: weak edges retain nothing).
  const edgeWidth = snap.snapshot.meta.edge_fields.length;
  const EDGE_TYPE = snap.snapshot.meta.edge_fields.indexOf('type');
  const TO = snap.snapshot.meta.edge_fields.indexOf('to_node');
  const weak = snap.snapshot.meta.edge_types[0].indexOf('weak');
  const EDGES = fields.indexOf('edge_count');
  const NAME_OR_INDEX = snap.snapshot.meta.edge_fields.indexOf('name_or_index');
  const edgeTypes = snap.snapshot.meta.edge_types[0];
  /** Per node, up to 4 retainers: the retaining node and the edge's name (a property, an index). */
  const retainers = new Map<number, { from: number; edge: string }[]>();
  for (let i = 0, e = 0; i < snap.nodes.length; i += width) {
    for (let k = 0; k < snap.nodes[i + EDGES]!; k++, e += edgeWidth) {
      if (snap.edges[e + EDGE_TYPE] === weak) continue;
      const to = snap.edges[e + TO]!;
      const list = retainers.get(to) ?? [];
      const type = edgeTypes[snap.edges[e + EDGE_TYPE]!];
      const nameOrIndex = snap.edges[e + NAME_OR_INDEX]!;
      const edge =
        type === 'element' || type === 'hidden' ? `[${nameOrIndex}]` : `.${snap.strings[nameOrIndex]}`;
      if (list.length < 4) list.push({ from: i, edge: edge.slice(0, 40) });
      retainers.set(to, list);
    }
  }
  const chains = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < snap.nodes.length; i += width) {
    if (groupOf(i) !== wanted) continue;
    const path: string[] = [];
    let at = i;
    for (let depth = 0; depth < 5; depth++) {
      const up = retainers.get(at)?.find((r) => !groupOf(r.from).startsWith('synthetic'));
      if (up === undefined) break;
      // Array indices differ from one object to the next: shown as [n].
      path.push(`${groupOf(up.from)}${/^(\[|\.\d+$)/.test(up.edge) ? '[n]' : up.edge}`);
      at = up.from;
    }
    const key = path.join(' ← ');
    const c = chains.get(key) ?? { count: 0, bytes: 0 };
    c.count++;
    c.bytes += snap.nodes[i + SIZE]!;
    chains.set(key, c);
  }
  console.log(`\nwhat holds ${wanted}:`);
  for (const [key, c] of [...chains].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, 15))
    console.log(`${(c.bytes / 2 ** 20).toFixed(1).padStart(8)} MB ${String(c.count).padStart(9)}  ← ${key}`);
}
