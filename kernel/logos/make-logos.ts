// Renders the kernelspec's PNG logos from logo-svg.svg (Jupyter wants logo-32x32.png and logo-64x64.png next to
// kernel.json). The PNGs are committed; run this after changing the SVG:
//   node --import tsx kernel/logos/make-logos.ts
import * as path from 'node:path';
import sharp from 'sharp';

void (async () => {
  const svg = path.join(__dirname, 'logo-svg.svg');
  for (const size of [32, 64]) {
    await sharp(svg, { density: (72 * size) / 64 }).resize(size, size).png({ compressionLevel: 9 }).toFile(path.join(__dirname, `logo-${size}x${size}.png`));
  }
})();
