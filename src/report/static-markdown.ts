// A small Markdown → HTML converter for exporting notebook markdown cells: headings, paragraphs, emphasis,
// code, lists, block quotes, tables, rules, links and images. Text is escaped; only a few harmless inline
// tags and whole raw-HTML blocks written by the notebook's author pass through. Not CommonMark-complete.

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);
}

const INLINE_TAGS = /^<\/?(br|b|i|em|strong|sub|sup|code|span|kbd|u|s|small|mark)(\s[^<>]*)?\/?>/i;

/** Resolves `attachment:name` image sources of a notebook cell to data: URLs. */
export type AttachmentResolver = (name: string) => string | null;

function safeUrl(url: string, attachments?: AttachmentResolver): string {
  const u = url.trim();
  if (u.startsWith('attachment:')) return attachments?.(u.slice('attachment:'.length)) ?? '';
  if (/^\s*(javascript|vbscript):/i.test(u)) return '';
  return u;
}

function inline(text: string, attachments?: AttachmentResolver): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const rest = text.slice(i);
    let m: RegExpMatchArray | null;
    if ((m = rest.match(/^(`+)([\s\S]*?[^`])\1(?!`)/))) {
      out += `<code>${escapeHtml(m[2].trim())}</code>`;
    } else if ((m = rest.match(/^!\[([^\]]*)\]\(([^)\s]+)(?:\s+"([^"]*)")?\)/))) {
      const src = safeUrl(m[2], attachments);
      out += `<img src="${escapeHtml(src)}" alt="${escapeHtml(m[1])}"${m[3] ? ` title="${escapeHtml(m[3])}"` : ''}>`;
    } else if ((m = rest.match(/^\[([^\]]+)\]\(([^)\s]+)(?:\s+"([^"]*)")?\)/))) {
      out += `<a href="${escapeHtml(safeUrl(m[2]))}">${inline(m[1], attachments)}</a>`;
    } else if ((m = rest.match(/^<(https?:\/\/[^>\s]+)>/))) {
      out += `<a href="${escapeHtml(m[1])}">${escapeHtml(m[1])}</a>`;
    } else if ((m = rest.match(/^(\*\*|__)(?=\S)([\s\S]*?\S)\1/))) {
      out += `<strong>${inline(m[2], attachments)}</strong>`;
    } else if ((m = rest.match(/^(\*|_)(?=\S)([\s\S]*?\S)\1(?![\w*])/))) {
      out += `<em>${inline(m[2], attachments)}</em>`;
    } else if ((m = rest.match(/^~~(?=\S)([\s\S]*?\S)~~/))) {
      out += `<del>${inline(m[1], attachments)}</del>`;
    } else if ((m = rest.match(INLINE_TAGS))) {
      out += m[0];
    } else if ((m = rest.match(/^ {2,}\n/)) || (m = rest.match(/^\\\n/))) {
      out += '<br>\n';
    } else if ((m = rest.match(/^\\([\\`*_{}[\]()#+\-.!|~<>$])/))) {
      out += escapeHtml(m[1]);
    } else {
      m = rest.match(/^[^`![<*_~\\ ]+|^[\s\S]/) as RegExpMatchArray;
      out += escapeHtml(m[0]);
    }
    i += m[0].length;
  }
  return out;
}

function splitRow(line: string): string[] {
  return line.trim().replace(/^\|/, '').replace(/\|$/, '').split(/(?<!\\)\|/).map((c) => c.trim());
}

const BLOCK_START = /^(#{1,6}\s|```|~~~|>|\s*([-*+]|\d+[.)])\s|\s*(-{3,}|\*{3,}|_{3,})\s*$|<[a-zA-Z!/])/;

/** Markdown source → HTML. */
export function markdownToHtml(source: string, attachments?: AttachmentResolver): string {
  const lines = source.replace(/\r\n?/g, '\n').split('\n');
  const html: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    let m: RegExpMatchArray | null;
    if (line.trim() === '') {
      i++;
    } else if ((m = line.match(/^(```|~~~)\s*([\w+-]*)/))) {
      const fence = m[1];
      const body: string[] = [];
      i++;
      while (i < lines.length && !lines[i].startsWith(fence)) body.push(lines[i++]);
      i++;
      html.push(`<pre><code${m[2] ? ` class="language-${escapeHtml(m[2])}"` : ''}>${escapeHtml(body.join('\n'))}</code></pre>`);
    } else if ((m = line.match(/^(#{1,6})\s+(.*?)\s*#*\s*$/))) {
      const n = m[1].length;
      html.push(`<h${n}>${inline(m[2], attachments)}</h${n}>`);
      i++;
    } else if (/^\s*(-{3,}|\*{3,}|_{3,})\s*$/.test(line)) {
      html.push('<hr>');
      i++;
    } else if (line.startsWith('>')) {
      const body: string[] = [];
      while (i < lines.length && lines[i].startsWith('>')) body.push(lines[i++].replace(/^>\s?/, ''));
      html.push(`<blockquote>${markdownToHtml(body.join('\n'), attachments)}</blockquote>`);
    } else if ((m = line.match(/^\s*([-*+]|\d+[.)])\s+/))) {
      const ordered = /\d/.test(m[1]);
      const items: string[] = [];
      while (i < lines.length) {
        const item = lines[i].match(/^\s*([-*+]|\d+[.)])\s+(.*)$/);
        if (item && /\d/.test(item[1]) === ordered) {
          items.push(item[2]);
          i++;
        } else if (lines[i].trim() !== '' && /^\s+\S/.test(lines[i]) && items.length > 0) {
          items[items.length - 1] += `\n${lines[i].trim()}`;
          i++;
        } else break;
      }
      const tag = ordered ? 'ol' : 'ul';
      html.push(`<${tag}>${items.map((t) => `<li>${inline(t, attachments)}</li>`).join('')}</${tag}>`);
    } else if (line.includes('|') && i + 1 < lines.length && /^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$/.test(lines[i + 1])) {
      const head = splitRow(line);
      const aligns = splitRow(lines[i + 1]).map((c) => (c.startsWith(':') && c.endsWith(':') ? 'center' : c.endsWith(':') ? 'right' : ''));
      i += 2;
      const rows: string[][] = [];
      while (i < lines.length && lines[i].includes('|') && lines[i].trim() !== '') rows.push(splitRow(lines[i++]));
      const cell = (tag: string, c: string, k: number) => `<${tag}${aligns[k] ? ` style="text-align:${aligns[k]}"` : ''}>${inline(c, attachments)}</${tag}>`;
      html.push(
        `<table><thead><tr>${head.map((c, k) => cell('th', c, k)).join('')}</tr></thead>` +
          `<tbody>${rows.map((r) => `<tr>${r.map((c, k) => cell('td', c, k)).join('')}</tr>`).join('')}</tbody></table>`,
      );
    } else if (/^<[a-zA-Z!/]/.test(line)) {
      // A raw HTML block, as Jupyter renders it: up to the next blank line.
      const body: string[] = [];
      while (i < lines.length && lines[i].trim() !== '') body.push(lines[i++]);
      const raw = body.join('\n');
      // Jupyter sanitises markdown HTML; scripts and event handlers are shown as text rather than run.
      html.push(/<script|<iframe|<object|<embed|\son\w+\s*=|javascript:/i.test(raw) ? `<pre>${escapeHtml(raw)}</pre>` : raw);
    } else {
      const body: string[] = [line];
      i++;
      while (i < lines.length && lines[i].trim() !== '' && !BLOCK_START.test(lines[i])) body.push(lines[i++]);
      html.push(`<p>${inline(body.join('\n'), attachments)}</p>`);
    }
  }
  return html.join('\n');
}
