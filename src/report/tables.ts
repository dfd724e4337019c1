// Writes experiment result tables as CSV and Arrow IPC files (arquero), plus a small HTML table for reports.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ColumnTable } from 'arquero';
import { toArrowIPC } from 'arquero';

export function writeTable(table: ColumnTable, outDir: string, name: string): { csv: string; arrow: string } {
  fs.mkdirSync(outDir, { recursive: true });
  const csv = path.join(outDir, `${name}.csv`);
  const arrow = path.join(outDir, `${name}.arrow`);
  fs.writeFileSync(csv, table.toCSV());
  fs.writeFileSync(arrow, toArrowIPC(table));
  return { csv, arrow };
}

function escape(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

function cell(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toPrecision(4);
  if (v === null || v === undefined) return '';
  return escape(typeof v === 'object' ? JSON.stringify(v) : String(v));
}

/** The first `limit` rows as an HTML table (the full table lives in the CSV/Arrow files). */
export function htmlTable(table: ColumnTable, limit = 12): string {
  const cols = table.columnNames();
  const rows = table.objects({ limit }) as Record<string, unknown>[];
  const head = cols.map((c) => `<th>${escape(c)}</th>`).join('');
  const body = rows.map((r) => `<tr>${cols.map((c) => `<td>${cell(r[c])}</td>`).join('')}</tr>`).join('\n');
  const more = table.numRows() > limit ? `<p class="note">${limit} of ${table.numRows()} rows shown; all rows are in the CSV/Arrow files.</p>` : '';
  return `<table class="data"><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>${more}`;
}

/** Summary values that are plain numbers/strings, as one compact key/value row table. */
export function htmlSummary(summary: Record<string, unknown>): string {
  const items = Object.entries(summary).filter(([, v]) => v === null || ['number', 'string', 'boolean'].includes(typeof v));
  const head = items.map(([k]) => `<th>${escape(k)}</th>`).join('');
  const body = items.map(([, v]) => `<td>${v === null ? '—' : cell(v)}</td>`).join('');
  return `<table class="data summary"><thead><tr>${head}</tr></thead><tbody><tr>${body}</tr></tbody></table>`;
}
