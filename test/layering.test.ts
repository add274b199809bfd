/**
 * The layer map of `src/`, enforced: fails when a file imports a layer above its own, when a
 * feature imports one that comes after it in the feature order, when a folder or top-level file
 * appears that the map does not place, and when two source files import each other (directly
 * or round a longer loop). docs/CONTRIBUTING.md explains the map in prose; this is the truth.
 */
import { describe, expect, test } from 'bun:test';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const SRC = resolve(import.meta.dir, '..', 'src');

/**
 * Every folder and top-level file of `src/`, bottom up. A file may import its own unit, any unit
 * of a lower layer and, where `lateral` allows it, another unit of its own layer. Features are
 * ordered: a feature may import only the features listed before it.
 */
const LAYERS = [
  // Pure cryptography: imports nothing of ours but itself.
  { name: 'crypto', units: ['crypto'], lateral: false },
  // Leaves every layer may use; `net` (IP/CIDR parsing) imports nothing of ours.
  {
    name: 'base',
    units: [
      'errors.ts',
      'clock.ts',
      'ids.ts',
      'version.ts',
      'types.d.ts',
      'os-user.ts',
      'roles.ts',
      'log',
      'net',
    ],
    lateral: true,
    selfOnly: ['net'],
  },
  // Infrastructure: storage, configuration, the HTTP shell and shared request schemas.
  { name: 'infrastructure', units: ['db', 'config', 'http'], lateral: true },
  // The running instance: key material and the object every feature receives.
  { name: 'core', units: ['keyring', 'instance.ts'], lateral: true },
  // The ledger: what every change writes beside itself in its transaction — the audit chain's
  // append, the outbox's events and deliveries, the idempotent response. The change pipeline
  // (the first feature) composes it; features read and query it through their own folders.
  { name: 'ledger', units: ['ledger'], lateral: false },
  // Features, in dependency order (each may import the ones before it).
  {
    name: 'feature',
    units: [
      'changes',
      'access',
      'audit',
      'idempotency',
      'projects',
      'vaults',
      'resources',
      'keys',
      // After keys: which events a key sees depends on which keys it may manage.
      'events',
      'me',
      'sessions',
      'webhooks',
      'vault-read',
      'secrets-import',
      'backup',
      'metrics',
      'console',
    ],
    ordered: true,
  },
  // Composition: wires features into the server and the CLI; nothing below imports it.
  {
    name: 'app',
    units: ['features.ts', 'server.ts', 'readiness.ts', 'client', 'cli', 'main.ts'],
    lateral: true,
  },
] as const satisfies readonly {
  name: string;
  units: readonly string[];
  lateral?: boolean;
  ordered?: boolean;
  selfOnly?: readonly string[];
}[];

/**
 * Imports allowed to break the map, each with the reason and who removes it: empty since the
 * ledger, roles.ts and the key MACs found their layers (issue 14). An entry that no longer
 * matches a violation fails the test, so a list that grows again can only shrink. Keys are
 * `from -> to`, paths relative to `src/`.
 */
const KNOWN_VIOLATIONS: Record<string, string> = {};

/** Import cycles between files allowed, as sorted member lists joined by ` ⇄ `: none. */
const KNOWN_CYCLES: Record<string, string> = {};

type Layer = (typeof LAYERS)[number];
type Place = { layer: Layer; rank: number; unit: string; order: number };

function placeOf(path: string): Place | undefined {
  const unit = path.includes('/') ? path.slice(0, path.indexOf('/')) : path;
  for (const [rank, layer] of LAYERS.entries()) {
    const order = (layer.units as readonly string[]).indexOf(unit);
    if (order >= 0) return { layer, rank, unit, order };
  }
  return undefined;
}

/** Why `from` may not import `to`, or undefined when it may. */
function violation(from: Place, to: Place): string | undefined {
  if (from.unit === to.unit) return undefined;
  const selfOnly: readonly string[] = 'selfOnly' in from.layer ? from.layer.selfOnly : [];
  if (from.layer.name === 'crypto' || selfOnly.includes(from.unit)) {
    return `${from.unit} imports nothing of ours but itself`;
  }
  if (to.rank > from.rank) return `${from.layer.name} may not import ${to.layer.name}`;
  if (to.rank < from.rank) return undefined;
  if ('ordered' in from.layer && from.layer.ordered) {
    return to.order < from.order ? undefined : `${from.unit} comes before ${to.unit}`;
  }
  return 'lateral' in from.layer && from.layer.lateral
    ? undefined
    : `${from.unit} may not import ${to.unit}`;
}

function sourceFiles(dir = SRC): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (/\.tsx?$/.test(name) && !name.endsWith('.test.ts')) out.push(path);
  }
  return out.sort();
}

/** Every relative specifier a file names: static, side-effect, re-export, type-only, dynamic. */
function allSpecifiers(code: string): string[] {
  const found = new Set<string>();
  const patterns = [
    /\bfrom\s+['"](\.{1,2}\/[^'"]+)['"]/g,
    /\bimport\s+['"](\.{1,2}\/[^'"]+)['"]/g,
    /\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g,
  ];
  for (const pattern of patterns) for (const m of code.matchAll(pattern)) found.add(m[1]!);
  return [...found];
}

const transpiler = new Bun.Transpiler({ loader: 'ts' });

/** The relative specifiers that load a module at run time (type-only imports are erased). */
function runtimeSpecifiers(code: string): string[] {
  return transpiler
    .scanImports(code)
    .map((i) => i.path)
    .filter((p) => p.startsWith('.'));
}

const files = sourceFiles();
const rel = (abs: string) => relative(SRC, abs).split('\\').join('/');
const edges = files.map((abs) => {
  const code = readFileSync(abs, 'utf8').replace(/^#!.*/, ''); // main.ts starts with a shebang
  const target = (spec: string) => rel(resolve(dirname(abs), spec));
  return {
    from: rel(abs),
    all: allSpecifiers(code).map(target),
    runtime: runtimeSpecifiers(code).map(target),
  };
});

/** Current violations as `from -> to` keys with the reason. */
export function layeringViolations(): Map<string, string> {
  const found = new Map<string, string>();
  for (const { from, all } of edges) {
    const source = placeOf(from)!;
    for (const to of all) {
      if (to.startsWith('..')) continue; // outside src/: migrations, package.json
      const target = placeOf(to);
      if (!target) continue; // reported by the "every unit is placed" test
      const why = violation(source, target);
      if (why) found.set(`${from} -> ${to}`, why);
    }
  }
  return found;
}

/** Strongly connected components of the run-time import graph with more than one file. */
export function importCycles(): string[] {
  const graph = new Map(edges.map((e) => [e.from, e.runtime.filter((t) => !t.startsWith('..'))]));
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[] = [];
  let next = 0;
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const members: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        members.push(w);
      } while (w !== v);
      const selfLoop = (graph.get(v) ?? []).includes(v);
      if (members.length > 1 || selfLoop) cycles.push(members.sort().join(' ⇄ '));
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return cycles.sort();
}

describe('layering of src/', () => {
  test('every folder and top-level file of src/ has a place in the map', () => {
    const unplaced = readdirSync(SRC)
      .filter((name) => !name.endsWith('.test.ts'))
      .filter((name) => !placeOf(name));
    expect(unplaced).toEqual([]);
  });

  test('no import runs against the layers, beyond the listed ones that are being removed', () => {
    const found = layeringViolations();
    const unexpected = [...found].filter(([key]) => !(key in KNOWN_VIOLATIONS));
    expect(unexpected.map(([key, why]) => `${key} (${why})`)).toEqual([]);
  });

  test('the list of known violations holds only imports that still exist', () => {
    const found = layeringViolations();
    expect(Object.keys(KNOWN_VIOLATIONS).filter((key) => !found.has(key))).toEqual([]);
  });

  test('no import cycle between source files, beyond the listed ones', () => {
    const cycles = importCycles();
    expect(cycles.filter((c) => !(c in KNOWN_CYCLES))).toEqual([]);
    expect(Object.keys(KNOWN_CYCLES).filter((c) => !cycles.includes(c))).toEqual([]);
  });

  test('no source file imports test code', () => {
    const offenders = edges.flatMap(({ from, all }) =>
      all.filter((to) => to.startsWith('../test/')).map((to) => `${from} -> ${to}`),
    );
    expect(offenders).toEqual([]);
  });

  test('the checker itself catches an upward import and a cycle', () => {
    const crypto = placeOf('crypto/envelope.ts')!;
    const db = placeOf('db/client.ts')!;
    const resources = placeOf('resources/store.ts')!;
    const projects = placeOf('projects/service.ts')!;
    const features = placeOf('features.ts')!;
    expect(violation(crypto, placeOf('errors.ts')!)).toBeDefined();
    expect(violation(db, resources)).toBeDefined();
    expect(violation(projects, resources)).toBeDefined();
    expect(violation(resources, projects)).toBeUndefined();
    expect(violation(resources, features)).toBeDefined();
    expect(violation(placeOf('net/ip.ts')!, placeOf('errors.ts')!)).toBeDefined();
    expect(runtimeSpecifiers(`import type { A } from './a.ts'; import './b.ts';`)).toEqual([
      './b.ts',
    ]);
  });
});
