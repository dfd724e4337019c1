// Procedural images for toyworld entities: each entity is a combination of discrete visual attributes
// (type-specific motif, colours, pattern), rendered on a small RGB canvas; augmented views move, scale,
// recolour and add noise so that recognising an entity must generalise beyond the pixels it was shown.
// Integer and IEEE-exact arithmetic only (no sin/log), so renders are identical on every platform.

import { PNG } from 'pngjs';
import type { EntityType } from '../popvqa';
import { type Rng, hashSeed, mulberry32, randInt, shuffled } from '../random';

type RGB = readonly [number, number, number];

const C = {
  red: [200, 40, 40],
  orange: [235, 130, 30],
  yellow: [235, 205, 50],
  green: [50, 150, 60],
  teal: [30, 150, 150],
  blue: [40, 80, 200],
  navy: [25, 35, 90],
  purple: [130, 60, 170],
  pink: [230, 120, 170],
  brown: [120, 75, 40],
  white: [240, 240, 235],
  cream: [245, 230, 200],
  black: [25, 25, 30],
  grey: [130, 130, 135],
  silver: [190, 190, 200],
  gold: [200, 160, 60],
  sand: [220, 200, 140],
  skin1: [240, 200, 170],
  skin2: [210, 160, 120],
  skin3: [160, 110, 75],
  skin4: [100, 65, 45],
  sky: [150, 200, 240],
  dusk: [240, 170, 120],
  night: [30, 40, 80],
  overcast: [180, 185, 190],
  mint: [170, 220, 200],
} satisfies Record<string, RGB>;
type ColourName = keyof typeof C;

/** Attribute name → allowed values, per type. An identity picks one value of each. */
export const ATTRIBUTES = {
  celebs: {
    background: ['teal', 'blue', 'purple', 'pink', 'yellow', 'grey'],
    skin: ['skin1', 'skin2', 'skin3', 'skin4'],
    hair: ['black', 'brown', 'yellow', 'orange', 'white', 'bald'],
    shirt: ['red', 'green', 'blue', 'black', 'white', 'orange'],
    shirtPattern: ['plain', 'hstripes', 'vstripes', 'dots'],
    head: ['round', 'oval'],
  },
  landmarks: {
    kind: ['Tower', 'Bridge', 'Dome', 'Gate', 'Pyramid'],
    sky: ['sky', 'dusk', 'night', 'overcast', 'mint'],
    ground: ['green', 'brown', 'grey', 'sand'],
    structure: ['white', 'grey', 'brown', 'red', 'blue', 'gold'],
    pattern: ['plain', 'windows', 'bands', 'bricks'],
  },
  paintings: {
    frame: ['gold', 'brown', 'black', 'silver'],
    canvas: ['cream', 'sky', 'green', 'yellow', 'pink', 'navy'],
    motif: ['circle', 'triangle', 'square', 'horizon', 'diamond'],
    motifColour: ['red', 'blue', 'green', 'black', 'orange', 'purple'],
    accent: ['none', 'sun', 'diagonal', 'grid'],
  },
  brands: {
    background: ['white', 'black', 'yellow', 'teal', 'grey'],
    glyph: ['circle', 'square', 'diamond', 'triangle', 'ring', 'cross'],
    glyphColour: ['red', 'blue', 'green', 'orange', 'purple', 'brown'],
    detail: ['none', 'dot', 'band', 'split'],
  },
} as const satisfies Record<EntityType, Record<string, readonly string[]>>;

/** Kinds of landmark: the second word of a landmark's name and the silhouette in its image. */
export const LANDMARK_KINDS = ATTRIBUTES.landmarks.kind;

export type Identity = Record<string, string>;

/**
 * Picks `count` identities for a type so that any two differ in at least two attributes (no single
 * attribute tells two entities apart, so recognition must combine features). `fixed[i]` pins some
 * attributes of identity i (the landmark kind, which the name also carries).
 */
export function drawIdentities(rng: Rng, type: EntityType, count: number, fixed: Array<Partial<Identity>> = []): Identity[] {
  const space = ATTRIBUTES[type] as Record<string, readonly string[]>;
  const names = Object.keys(space);
  const total = names.reduce((p, n) => p * space[n].length, 1);
  const decode = (index: number): Identity => {
    const id: Identity = {};
    for (const n of names) {
      id[n] = space[n][index % space[n].length];
      index = Math.floor(index / space[n].length);
    }
    return id;
  };
  const order = shuffled(rng, Array.from({ length: total }, (_, i) => i));
  const chosen: Identity[] = [];
  const taken = new Set<number>();
  for (let k = 0; k < count; k++) {
    const want = fixed[k] ?? {};
    const index = order.find((i) => {
      if (taken.has(i)) return false;
      const cand = decode(i);
      if (Object.entries(want).some(([a, v]) => cand[a] !== v)) return false;
      if (!visible(type, cand)) return false;
      return chosen.every((other) => names.filter((n) => other[n] !== cand[n]).length >= 2);
    });
    if (index === undefined) throw new RangeError(`drawIdentities: cannot find ${count} distinct ${type} images; lower entitiesPerType.`);
    taken.add(index);
    chosen.push(decode(index));
  }
  return chosen;
}

/** Rejects identities whose motif would vanish into its background. */
function visible(type: EntityType, id: Identity): boolean {
  if (type === 'brands') return id.background !== id.glyphColour;
  if (type === 'paintings') return id.canvas !== id.motifColour;
  return true;
}

/** A view's geometric and photometric change; integers so views.csv records it exactly. */
export interface Augmentation {
  /** Scale in thousandths (1000 = canonical size). */
  scalePermille: number;
  /** Shift of the content, in thousandths of the image side. */
  dxPermille: number;
  dyPermille: number;
  /** Added to every pixel's R, G, B. */
  jitter: [number, number, number];
  /** Per-pixel uniform noise in [-noise, noise]. */
  noise: number;
}

export const CANONICAL_VIEW: Augmentation = { scalePermille: 1000, dxPermille: 0, dyPermille: 0, jitter: [0, 0, 0], noise: 0 };

/** View 0 is the canonical rendering; other views draw their change from (seed, s_uri, view). */
export function augmentationFor(seed: number, sUri: string, view: number): Augmentation {
  if (view === 0) return CANONICAL_VIEW;
  const rng = mulberry32(hashSeed(seed, 'view', sUri, view));
  return {
    scalePermille: randInt(rng, 800, 1150),
    dxPermille: randInt(rng, -100, 100),
    dyPermille: randInt(rng, -100, 100),
    jitter: [randInt(rng, -20, 20), randInt(rng, -20, 20), randInt(rng, -20, 20)],
    noise: 6,
  };
}

/**
 * Renders one view as RGB bytes (size × size × 3). Each pixel averages a 2 × 2 grid of samples of the
 * scene in canonical coordinates (u, v) ∈ [0, 1]², mapped through the view's scale and shift.
 */
export function renderRgb(type: EntityType, identity: Identity, aug: Augmentation, size: number, noiseSeed: number): Uint8Array {
  const scene = SCENES[type];
  const out = new Uint8Array(size * size * 3);
  const scale = aug.scalePermille / 1000;
  const dx = aug.dxPermille / 1000;
  const dy = aug.dyPermille / 1000;
  const rng = mulberry32(noiseSeed);
  for (let py = 0; py < size; py++) {
    for (let px = 0; px < size; px++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let sy = 0; sy < 2; sy++) {
        const v = 0.5 + ((py + 0.25 + 0.5 * sy) / size - 0.5 - dy) / scale;
        for (let sx = 0; sx < 2; sx++) {
          const u = 0.5 + ((px + 0.25 + 0.5 * sx) / size - 0.5 - dx) / scale;
          const c = scene(identity, u, v);
          r += c[0];
          g += c[1];
          b += c[2];
        }
      }
      const o = (py * size + px) * 3;
      out[o] = clamp(((r + 2) >> 2) + aug.jitter[0] + (aug.noise ? randInt(rng, -aug.noise, aug.noise) : 0));
      out[o + 1] = clamp(((g + 2) >> 2) + aug.jitter[1] + (aug.noise ? randInt(rng, -aug.noise, aug.noise) : 0));
      out[o + 2] = clamp(((b + 2) >> 2) + aug.jitter[2] + (aug.noise ? randInt(rng, -aug.noise, aug.noise) : 0));
    }
  }
  return out;
}

/** PNG bytes (8-bit RGB, fixed deflate settings) for RGB data. */
export function encodePng(rgb: Uint8Array, size: number): Buffer {
  const png = new PNG({ width: size, height: size });
  for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
    png.data[j] = rgb[i];
    png.data[j + 1] = rgb[i + 1];
    png.data[j + 2] = rgb[i + 2];
    png.data[j + 3] = 255;
  }
  return PNG.sync.write(png, { colorType: 2, deflateLevel: 9 });
}

/** RGB bytes of a PNG file (for comparing renders by pixels rather than by compressed bytes). */
export function decodePngRgb(bytes: Buffer): { width: number; height: number; rgb: Uint8Array } {
  const png = PNG.sync.read(bytes);
  const rgb = new Uint8Array(png.width * png.height * 3);
  for (let i = 0, j = 0; j < png.data.length; i += 3, j += 4) {
    rgb[i] = png.data[j];
    rgb[i + 1] = png.data[j + 1];
    rgb[i + 2] = png.data[j + 2];
  }
  return { width: png.width, height: png.height, rgb };
}

// ---------------------------------------------------------------------------------------------------
// Scenes: colour at canonical point (u, v), v pointing down. Defined everywhere, so zoomed-out views
// simply show more background.

type Scene = (id: Identity, u: number, v: number) => RGB;

const col = (name: string): RGB => C[name as ColourName];
const clamp = (x: number): number => (x < 0 ? 0 : x > 255 ? 255 : x);
const shade = (c: RGB, by: number): RGB => [clamp(c[0] + by), clamp(c[1] + by), clamp(c[2] + by)];
/** Inside the ellipse centred (cx, cy) with radii (rx, ry)? */
const inEllipse = (u: number, v: number, cx: number, cy: number, rx: number, ry: number): boolean =>
  ((u - cx) * (u - cx)) / (rx * rx) + ((v - cy) * (v - cy)) / (ry * ry) <= 1;
const inRect = (u: number, v: number, x0: number, y0: number, x1: number, y1: number): boolean => u >= x0 && u <= x1 && v >= y0 && v <= y1;
/** Inside the upward triangle with apex (cx, top) and base from (cx − half, bottom) to (cx + half, bottom)? */
const inTriangle = (u: number, v: number, cx: number, top: number, bottom: number, half: number): boolean =>
  v >= top && v <= bottom && Math.abs(u - cx) <= (half * (v - top)) / (bottom - top);
const inDiamond = (u: number, v: number, cx: number, cy: number, r: number): boolean => Math.abs(u - cx) + Math.abs(v - cy) <= r;
const frac = (x: number): number => x - Math.floor(x);

/** Pattern mask in canonical coordinates. */
function patterned(pattern: string, u: number, v: number): boolean {
  switch (pattern) {
    case 'hstripes':
    case 'bands':
      return Math.floor(v * 12) % 2 === 0;
    case 'vstripes':
      return Math.floor(u * 12) % 2 === 0;
    case 'dots':
      const a = frac(u * 8) - 0.5;
      const b = frac(v * 8) - 0.5;
      return a * a + b * b < 0.06;
    case 'windows':
      return frac(u * 10) > 0.3 && frac(u * 10) < 0.7 && frac(v * 10) > 0.3 && frac(v * 10) < 0.7;
    case 'bricks':
      return (Math.floor(u * 12) + Math.floor(v * 12)) % 2 === 0;
    default:
      return false;
  }
}

const celebScene: Scene = (id, u, v) => {
  const skin = col(id.skin);
  const oval = id.head === 'oval';
  const [rx, ry] = oval ? [0.16, 0.22] : [0.19, 0.19];
  const cy = 0.42;
  if (inEllipse(u, v, 0.44, 0.41, 0.025, 0.025) || inEllipse(u, v, 0.56, 0.41, 0.025, 0.025)) return C.black;
  if (inEllipse(u, v, 0.5, cy, rx, ry)) {
    // Hair covers the top of the head.
    if (id.hair !== 'bald' && v < cy - ry * 0.45) return col(id.hair);
    return skin;
  }
  if (id.hair !== 'bald' && inEllipse(u, v, 0.5, cy - 0.02, rx + 0.03, ry + 0.02) && v < cy) return col(id.hair);
  if (inRect(u, v, 0.45, cy + ry - 0.02, 0.55, 0.72)) return skin;
  if (inEllipse(u, v, 0.5, 1.08, 0.42, 0.38)) {
    const shirt = col(id.shirt);
    const light = id.shirt === 'white' || id.shirt === 'yellow';
    return patterned(id.shirtPattern, u, v) ? (light ? C.black : C.white) : shirt;
  }
  return col(id.background);
};

const landmarkScene: Scene = (id, u, v) => {
  const horizon = 0.75;
  const body = col(id.structure);
  const inside = inLandmark(id.kind, u, v, horizon);
  if (inside) return patterned(id.pattern, u, v) ? shade(body, -70) : body;
  return v > horizon ? col(id.ground) : col(id.sky);
};

function inLandmark(kind: string, u: number, v: number, horizon: number): boolean {
  switch (kind) {
    case 'Tower':
      return inRect(u, v, 0.42, 0.16, 0.58, horizon) || inTriangle(u, v, 0.5, 0.04, 0.16, 0.08);
    case 'Bridge':
      return inRect(u, v, 0.04, 0.48, 0.96, 0.55) || inRect(u, v, 0.24, 0.3, 0.31, horizon) || inRect(u, v, 0.69, 0.3, 0.76, horizon);
    case 'Dome':
      return (inEllipse(u, v, 0.5, horizon, 0.3, 0.32) && v <= horizon) || inRect(u, v, 0.485, 0.36, 0.515, 0.45);
    case 'Gate':
      return inRect(u, v, 0.24, 0.3, 0.37, horizon) || inRect(u, v, 0.63, 0.3, 0.76, horizon) || inRect(u, v, 0.2, 0.2, 0.8, 0.31);
    default:
      return inTriangle(u, v, 0.5, 0.22, horizon, 0.36);
  }
}

const paintingScene: Scene = (id, u, v) => {
  if (u < 0 || u > 1 || v < 0 || v > 1) return C.overcast; // the wall
  if (u < 0.09 || u > 0.91 || v < 0.09 || v > 0.91) return col(id.frame);
  const motif = col(id.motifColour);
  if (inMotif(id.motif, u, v)) return motif;
  switch (id.accent) {
    case 'sun':
      if (inEllipse(u, v, 0.75, 0.25, 0.08, 0.08)) return C.yellow;
      break;
    case 'diagonal':
      if (Math.floor((u + v) * 8) % 2 === 0) return shade(col(id.canvas), -45);
      break;
    case 'grid':
      if (frac(u * 5) < 0.12 || frac(v * 5) < 0.12) return shade(col(id.canvas), -45);
      break;
  }
  return col(id.canvas);
};

function inMotif(motif: string, u: number, v: number): boolean {
  switch (motif) {
    case 'circle':
      return inEllipse(u, v, 0.5, 0.55, 0.2, 0.2);
    case 'triangle':
      return inTriangle(u, v, 0.5, 0.3, 0.75, 0.25);
    case 'square':
      return inRect(u, v, 0.32, 0.37, 0.68, 0.73);
    case 'horizon':
      return v > 0.6;
    default:
      return inDiamond(u, v, 0.5, 0.55, 0.24);
  }
}

const brandScene: Scene = (id, u, v) => {
  const bg = col(id.background);
  const glyph = col(id.glyphColour);
  if (!inGlyph(id.glyph, u, v)) return bg;
  switch (id.detail) {
    case 'dot':
      return inEllipse(u, v, 0.5, 0.55, 0.07, 0.07) ? bg : glyph;
    case 'band':
      return inRect(u, v, 0, 0.5, 1, 0.58) ? bg : glyph;
    case 'split':
      return u > 0.5 ? shade(glyph, 60) : glyph;
    default:
      return glyph;
  }
};

function inGlyph(glyph: string, u: number, v: number): boolean {
  switch (glyph) {
    case 'circle':
      return inEllipse(u, v, 0.5, 0.5, 0.28, 0.28);
    case 'square':
      return inRect(u, v, 0.25, 0.25, 0.75, 0.75);
    case 'diamond':
      return inDiamond(u, v, 0.5, 0.5, 0.32);
    case 'triangle':
      return inTriangle(u, v, 0.5, 0.2, 0.78, 0.32);
    case 'ring':
      return inEllipse(u, v, 0.5, 0.5, 0.3, 0.3) && !inEllipse(u, v, 0.5, 0.5, 0.17, 0.17);
    default:
      return inRect(u, v, 0.42, 0.2, 0.58, 0.8) || inRect(u, v, 0.2, 0.42, 0.8, 0.58);
  }
}

const SCENES: Record<EntityType, Scene> = {
  celebs: celebScene,
  landmarks: landmarkScene,
  paintings: paintingScene,
  brands: brandScene,
};
