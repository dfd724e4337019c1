// The part of the plotly.js API the views use, typed locally (plotly.js-dist-min ships no types).

export type Datum = string | number | null;

/** A plotly trace or layout fragment: plotly's attribute tree is open-ended, so values stay `unknown`. */
export interface Trace {
  type?: string;
  [attribute: string]: unknown;
}
export interface Layout {
  [attribute: string]: unknown;
}
export interface Config {
  [option: string]: unknown;
}

export interface PlotPoint {
  x?: Datum;
  y?: Datum;
  customdata?: unknown;
  curveNumber: number;
}

export interface PlotEvent {
  points?: PlotPoint[];
}

/** A div after plotly has drawn into it. */
export interface PlotDiv extends HTMLDivElement {
  on(event: 'plotly_click' | 'plotly_hover', handler: (e: PlotEvent) => void): void;
}

export interface ImageOptions {
  format: 'png' | 'svg';
  width?: number;
  height?: number;
  filename?: string;
  scale?: number;
  /** 'opaque' paints the paper white instead of keeping it transparent. */
  setBackground?: 'opaque' | 'transparent';
}

export interface PlotlyStatic {
  react(div: HTMLElement, data: Trace[], layout: Layout, config?: Config): Promise<PlotDiv>;
  purge(div: HTMLElement): void;
  toImage(div: HTMLElement, options: ImageOptions): Promise<string>;
  downloadImage(div: HTMLElement, options: ImageOptions): Promise<string>;
  Plots: { resize(div: HTMLElement): unknown };
}
