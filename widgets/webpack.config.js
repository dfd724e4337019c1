// Merged into @jupyterlab/builder's config by build-labextension (package.json jupyterlab.webpackConfig).
// plotly.js-dist-min is already minified: parsing or re-minifying its 4.6 MB only costs build time.
const TerserPlugin = require('terser-webpack-plugin');

module.exports = {
  module: { noParse: /plotly\.js-dist-min/ },
  optimization: {
    chunkIds: 'named',
    minimizer: [new TerserPlugin({ exclude: /plotly/, extractComments: false })],
  },
  performance: { hints: false },
};
