// Writing a result table: CSV (arquero) and Arrow IPC. Columns mixing kinds of values (a window label
// that is a layer or "0-9") become strings in Arrow, which needs one type per column.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as aq from 'arquero';

function kindOf(v: unknown): string | null {
  if (v === null || v === undefined || (typeof v === 'number' && Number.isNaN(v))) return null;
  if (Array.isArray(v) || typeof v === 'object') return 'object';
  return typeof v;
}

/** The table with mixed-kind and nested columns turned into strings (JSON for nested values). */
export function arrowSafe(table: aq.ColumnTable): aq.ColumnTable {
  const fix: Record<string, (v: unknown) => unknown> = {};
  for (const name of table.columnNames()) {
    const kinds = new Set<string>();
    const values = table.array(name) as ArrayLike<unknown>;
    for (let i = 0; i < values.length; i++) {
      const k = kindOf(values[i]);
      if (k) kinds.add(k);
    }
    if (kinds.size > 1 || kinds.has('object')) fix[name] = (v) => (v === null || v === undefined ? null : typeof v === 'object' ? JSON.stringify(v) : String(v));
  }
  if (Object.keys(fix).length === 0) return table;
  const rows = (table.objects() as Record<string, unknown>[]).map((r) => {
    const o = { ...r };
    for (const [k, f] of Object.entries(fix)) o[k] = f(o[k]);
    return o;
  });
  return aq.from(rows);
}

/** Writes `table.csv` and `table.arrow` into `dir`; returns their paths. */
export function writeTable(table: aq.ColumnTable, dir: string, base = 'table'): { csv: string; arrow: string } {
  fs.mkdirSync(dir, { recursive: true });
  const csv = path.join(dir, `${base}.csv`);
  const arrow = path.join(dir, `${base}.arrow`);
  const safe = arrowSafe(table);
  fs.writeFileSync(csv, safe.toCSV());
  fs.writeFileSync(arrow, aq.toArrowIPC(safe));
  return { csv, arrow };
}
