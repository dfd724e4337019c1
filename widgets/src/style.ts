// The views' CSS, injected once per document (one bundle file, no CSS loader needed in either build).
// Colours fall back to light-theme values outside JupyterLab (static pages).

const CSS = `
.hs-view { font-family: var(--jp-ui-font-family, system-ui, -apple-system, "Segoe UI", sans-serif);
  font-size: var(--jp-ui-font-size1, 13px); color: var(--jp-content-font-color1, #222);
  border: 1px solid var(--jp-border-color2, #e0e0e0); border-radius: 4px; padding: 8px 10px; margin: 4px 0;
  background: var(--jp-layout-color0, #fff); box-sizing: border-box; width: 100%; min-width: 320px; }
.hs-header { display: flex; align-items: center; gap: 8px; margin-bottom: 4px; }
.hs-title { font-weight: 600; font-size: 1.1em; flex: 1 1 auto; }
.hs-kind { color: var(--jp-content-font-color2, #666); font-size: 0.9em; }
.hs-button { font: inherit; font-size: 0.9em; padding: 2px 8px; cursor: pointer; border-radius: 3px;
  border: 1px solid var(--jp-border-color1, #bbb); background: var(--jp-layout-color1, #f6f6f6);
  color: inherit; }
.hs-button:hover { background: var(--jp-layout-color2, #eaeaea); }
.hs-progress { display: flex; align-items: center; gap: 8px; margin: 4px 0; }
.hs-progress[hidden] { display: none; }
.hs-progress-track { flex: 1 1 auto; height: 6px; border-radius: 3px; background: var(--jp-layout-color3, #ddd); overflow: hidden; }
.hs-progress-fill { height: 100%; width: 0; background: var(--jp-brand-color1, #1976d2); transition: width 0.2s; }
.hs-progress-text { font-size: 0.9em; color: var(--jp-content-font-color2, #555); min-width: 8em; text-align: right; }
.hs-message { margin: 6px 0; padding: 8px 10px; border-radius: 3px; white-space: pre-wrap; }
.hs-message[hidden] { display: none; }
.hs-message.hs-error { background: var(--jp-error-color3, #fdecea); border-left: 4px solid var(--jp-error-color1, #d32f2f); }
.hs-message.hs-invalid { background: var(--jp-warn-color3, #fff8e1); border-left: 4px solid var(--jp-warn-color1, #f57c00); }
.hs-message.hs-info { background: var(--jp-info-color3, #e3f2fd); border-left: 4px solid var(--jp-info-color1, #1976d2); }
.hs-message ul { margin: 4px 0 0 0; padding-left: 1.4em; }
.hs-message code { font-family: var(--jp-code-font-family, monospace); font-size: 0.95em; }
.hs-controls { display: flex; flex-wrap: wrap; align-items: center; gap: 10px; margin: 4px 0; }
.hs-controls label { display: flex; align-items: center; gap: 4px; }
.hs-controls label[hidden] { display: none; }
.hs-controls select, .hs-controls input { font: inherit; color: inherit; background: var(--jp-layout-color0, #fff); }
.hs-plot { width: 100%; min-height: 120px; }
.hs-row { display: flex; flex-wrap: wrap; gap: 8px; }
.hs-row > .hs-plot { flex: 3 1 420px; width: auto; min-width: 0; }
.hs-row > .hs-plot[class*="-patches"] { flex: 1 1 300px; max-width: 480px; }
.hs-row > .hs-plot[hidden] { display: none; }
.hs-answer { margin-top: 6px; padding: 6px 10px; border-radius: 3px; background: var(--jp-layout-color1, #f6f8fa);
  border: 1px solid var(--jp-border-color2, #e0e0e0); white-space: pre-wrap; }
.hs-answer[hidden] { display: none; }
.hs-answer-head { font-weight: 600; margin-bottom: 2px; }
.hs-answer pre { margin: 4px 0 0 0; font-size: 0.9em; max-height: 16em; overflow: auto; }
.hs-table { border-collapse: collapse; margin-top: 6px; font-variant-numeric: tabular-nums; }
.hs-table th, .hs-table td { padding: 3px 10px; border-bottom: 1px solid var(--jp-border-color2, #e0e0e0); text-align: right; }
.hs-table th:first-child, .hs-table td:first-child { text-align: left; }
.hs-table tr.hs-total td { font-weight: 600; }
.hs-note { color: var(--jp-content-font-color2, #666); font-size: 0.9em; margin: 2px 0; }
.hs-panel-caption { font-weight: 600; margin: 8px 0 0 4px; }
`;

const STYLE_ID = 'hopscope-widgets-style';

export function ensureStyle(doc: Document): void {
  if (doc.getElementById(STYLE_ID)) return;
  const style = doc.createElement('style');
  style.id = STYLE_ID;
  style.textContent = CSS;
  doc.head.appendChild(style);
}
