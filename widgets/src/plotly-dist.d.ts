// plotly.js-dist-min is a UMD bundle without types; this names its default export.
declare module 'plotly.js-dist-min' {
  const Plotly: import('./plotly-types').PlotlyStatic;
  export default Plotly;
}
