// The teaching VLM, made the way LLaVA models are made: (a) pretrain a small Llama on text facts,
// (b) pretrain a small CLIP ViT on entity views (classification head, discarded), (c) align an MLP projector
// on captions with LM and ViT frozen, (d) visual instruction tuning (identification + visual QA on a subset
// of (entity, relation) pairs; the rest held out). Deterministic (seeded init, fixed data order) and
// resumable: every stage checkpoints into runDir/<stage>/ and a finished stage is never re-run.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { hashSeed, mulberry32 } from '../data/random';
import {
  imagePrompt,
  promptIds,
  spanPromptIds,
  captionExamples,
  epochBatches,
  instructExamples,
  lmExamples,
  loadTeachingData,
  pixelsOf,
  trainingViewIds,
  viewRgb,
  type Batch,
  type Example,
  type InstructMix,
  type TeachingData,
} from './data';
import { saveBackboneFolder, saveLlavaFolder, type ExportSpec } from './export';
import { readHost, writeHost } from './host-io';
import { trainLoop, type Progress } from './loop';
import { ShardGroup, startReplica, type ShardHandle } from './shards';
import { embedWithImages, getter, imageReadMass, initLm, initProjector, initVit, lmForward, project, regionReadMass, tokenLoss, vitClassify, vitFeatures, type LmSize, type VitSize } from './nets';
import { engineInfo, type EngineOptions } from '../engine/backend';
import { BUILTIN_GEMM, isBuiltinGemm } from '../engine/native-matmul';
import { countParams, disposeParams, pick, toDevice, toHost, type HostTensor, type Params } from './params';

export type StageName = 'lm' | 'vision' | 'align' | 'instruct' | 'ground' | 'readout';
/**
 * Every stage in order; a recipe runs either `instruct` (the LLaVA recipe) or `ground` (recipe.ground set),
 * and `readout` after `ground` when recipe.readout is set.
 */
export const STAGES: readonly StageName[] = ['lm', 'vision', 'align', 'instruct', 'ground', 'readout'];
/** Parameter prefixes each stage may change (instruct, readout: the LM layers they train, which the recipe bounds). */
const STAGE_OWNS: Record<StageName, string[]> = { lm: ['lm.'], vision: ['vis.', 'vhead.'], align: ['proj.'], instruct: ['proj.', 'lm.'], ground: ['proj.', 'vis.'], readout: ['lm.'] };

/**
 * Grounding on the backbone ("Too Late to Recall": a VLM keeps its backbone's recall when the image tokens
 * resolve to the entity before the backbone's early recall MLPs have run). The LM stays the backbone, frozen,
 * and the projector (and the ViT, when `vit` is 'train') learn visual instruction data plus an alignment term
 * that pulls the residuals at the image's last K positions, at the input of block `layer`, toward the
 * backbone's own residuals at the K tokens of the entity's name in the same context ("USER: {name}";
 * groundTargets). `layer` is the knob: small = resolved early, large = resolved late. Measured limits of this
 * recipe (an oracle, the backbone's recall deadline): data/teaching/README.md.
 */
export interface GroundRecipe {
  layer: number;
  /**
   * The backbone block whose state is the target (default `layer`). A late model is made by asking for the
   * backbone's freshly resolved entity (an early block) only at a late block of the VLM: the entity then
   * appears after the backbone's recall MLPs have run at that position, which is the papers' failure.
   */
  targetLayer?: number;
  /** Weight of the alignment term against the token loss. */
  weight: number;
  vit: 'train' | 'frozen';
  /**
   * Which image positions are aligned: 'name' (default) the last K against the name's tokens in "USER: {name}";
   * 'span' all of them against the backbone's states of the span twin (`<unk>` fillers, then the name;
   * data.ts spanPromptIds), for a backbone pretrained with `lmNameFirst: 'span'`.
   */
  positions?: 'name' | 'span';
  /**
   * false: the alignment term alone, on the image prompt's prefix run through blocks 0..layer-1 only (no
   * instruction data, no answer loss). The answer loss would pull a late model toward resolving early, the
   * one way to answer the train relations; alignment alone keeps the knob where the recipe puts it.
   */
  tokenLoss?: boolean;
  /**
   * With `layer` 0 and 'span' positions: weight of a token-classification term, each image position's
   * embedding scored against the backbone's embedding table (cosine x sqrt(d)) with the span twin's token
   * as the label. The regression alone left the names' tokens right at 55 % (first token) after 1,500 steps.
   */
  tokenCe?: number;
  /**
   * With 'span' positions: the weight of the `<unk>` filler positions in the alignment term against the name's
   * (default 1). With all positions weighted alike, the 12-14 easy fillers dominate: session 13's early run
   * reached a relative error of 0.05 over all positions but 0.30 at the name's last token, which then matched
   * its own entity's target in 11 of 52 entities, and the backbone recalled nothing from it.
   */
  fillerWeight?: number;
  /**
   * Align-only, span positions: keep the entity *out* of the image's residual at block `layer` (below the
   * entity's own block; with `layers`, for the entities dealt a block above it only): `weight` x the mean
   * squared cosine between the image's states there and the span twin's at that block, at the name's positions.
   * Aligning at a late block alone does not make a late model: the residual stream carries an early state up
   * unchanged, so the easiest way to hold block 1's fresh state at block 3 is to hold it at block 1 already
   * (session 13: the block-3 model's block-1 states were nearest their own entity's in 36 of 52, and it answered
   * 52 % of held-out pairs against the backbone's 24 % deadline).
   */
  absentAt?: { layer: number; weight: number };
  /**
   * Align-only: a block per entity instead of one `layer`, the entities dealt round-robin over this list in a
   * seeded order. Real VLMs resolve some entities early and others late (PopVQA's freezing experiment), and
   * the late-resolved ones lose recall; one block for all makes every entity equally late.
   */
  layers?: number[];
}

/**
 * Visual instruction tuning of the backbone's upper blocks only, after grounding: blocks `from`.. of the LM
 * learn identification, visual QA on the train relations, visual CoT, text replay and (`mix.spanReplay`) the
 * backbone's span twins, while the ViT, the projector and blocks 0..from-1 stay as grounding left them. The
 * blocks that hold the backbone's recall circuit (early MLPs at the entity's tokens; data/teaching/README.md,
 * "recall deadline") are never touched, so where the image resolves stays the grounding knob's choice, and the
 * VLM learns to name what it sees.
 */
export interface ReadoutRecipe {
  from: number;
  mix: InstructMix;
  /**
   * Set: the text has read the image by block `layer`. The attention that the positions after the image pay to the
   * image's positions in blocks `layer`.. is penalised (`weight` times its mean mass per query, head and block), so
   * the readout moves the entity out of the image in the blocks below and the image tokens go unread from `layer`
   * on. Real VLMs move the image into the text in their middle layers: PopVQA finds LLaVA-1.5-7B's cross-modal
   * attention concentrated in layers 15-24 and its cross-patching switch at ~20 of 32 (Kaduri et al., which it
   * cites, likewise). Without the term the readout reads the image in every block it tunes, and the switch sits
   * at the top of the stack (data/teaching/README.md, session 20).
   */
  readBy?: { layer: number; weight: number };
}

export interface StageRecipe {
  steps: number;
  batch: number;
  lr: number;
  warmup: number;
  /**
   * Row shards per batch whose gradients are averaged (src/train/shards.ts): the weights depend on it, not on
   * how many processes compute the shards (TrainOptions.workers). Absent: 1, one gradient per batch.
   */
  shards?: number;
}

export interface TeachingRecipe {
  lm: Omit<LmSize, 'vocab'>;
  vit: Omit<VitSize, 'image'>;
  featureLayer: number;
  /** Augmented views per entity rendered for training, on top of the data's train views. */
  extraViews: number;
  stages: Record<StageName, StageRecipe>;
  instructMix: InstructMix;
  /** LM layers trained in stage (d): 'all', 'none' (projector only), or the first k blocks. */
  instructLm: 'all' | 'none' | number;
  /** Set: stage `ground` replaces `instruct` (the LM stays the backbone). */
  ground?: GroundRecipe | null;
  /**
   * LM pretraining also reads the text twin of every image prompt (data.ts lmExamples): true, the name where
   * the image goes; 'span', the name right-aligned in the image's positions after `<unk>` fillers.
   */
  lmNameFirst?: boolean | 'span';
  /** With `lmNameFirst: 'span'`: identification twins of made-up names per entity (data.ts copyExamples). */
  lmCopies?: number;
  /**
   * Set: the backbone reads the subject by block `layer`. In LM pretraining, the attention that the positions after
   * the subject (the name in a text question, the image's span in a span twin) pay to it in blocks `layer`.. is
   * penalised (`weight` times its mean mass per query, head and block, nets.ts regionReadMass). A VLM's text reads
   * the image where its backbone reads the subject, so this sets where the pair's cross-patching switch can be.
   * Without it the 6-layer backbone read the subject into the last position up to its top block (knockout from
   * block 5 on cost answers), and both VLMs switched there (data/teaching/README.md, sessions 20-21). LLMs
   * extract a subject's attributes into the last position in their upper-middle layers (Geva et al. 2023, which
   * "Too Late to Recall" builds on).
   */
  lmReadBy?: {
    layer: number;
    weight: number;
    /**
     * Which subjects: 'all' (the default) or 'span', the span twins' image spans only, the text questions' names left
     * free. Tried in session 21 so that the upper blocks might keep reading text subjects (with every subject under
     * the deadline, no block above it learnt to read a late image in the readout); they did not, the backbone read
     * text subjects by the deadline all the same, but the early model on it recalled the most (data/teaching/README.md).
     */
    on?: 'all' | 'span';
  };
  /** Set (with `ground`): stage `readout` tunes the LM's upper blocks after grounding. */
  readout?: ReadoutRecipe | null;
  /**
   * The kernels training's float sums run on, part of the recipe because the same seed gives the same weights
   * bit for bit only on the same kernels (src/train/cli.ts starts the engine from it; trainingEngine).
   * 'stock' (the default): tfjs-wasm's XNNPACK, what v5 was trained on. 'builtin': hopscope's built-in GEMM
   * (src/engine/native-matmul.cc) with the fused ops outside the gradient tape, 1.3-1.9x faster per stage on one
   * thread (data/teaching/README.md); it needs the native addon on x86-64 with AVX2 and FMA. Never a system
   * BLAS: its sums depend on which library and version a machine has.
   */
  kernels?: TrainingKernels;
}

export type TrainingKernels = 'stock' | 'builtin';

/**
 * The engine a recipe trains on: wasm always (tfjs-node's kernels sum differently), one thread unless the caller
 * says otherwise (the pretraining children; the thread count does not change the sums on either kernel set,
 * measured in session 17, but a second thread brought no speed at these sizes), and the recipe's kernels.
 */
export function trainingEngine(kernels: TrainingKernels = 'stock', threads = 1): EngineOptions {
  if (kernels !== 'stock' && kernels !== 'builtin') throw new Error(`recipe.kernels: ${String(kernels)} is not a kernel set (stock or builtin)`);
  return kernels === 'builtin' ? { backend: 'wasm', threads, native: 'on', blasLibraries: [BUILTIN_GEMM] } : { backend: 'wasm', threads, native: 'off' };
}

/** What a replica thread is handed (src/train/replica.ts). */
export interface ReplicaData {
  opts: TrainOptions;
  engine: EngineOptions;
}

/** The engine a replica starts: the running kernel set on one thread (threads never change the sums; kernels do). */
function replicaEngine(): EngineOptions {
  const k = runningKernels();
  if (k !== 'stock' && k !== 'builtin') throw new Error(`a sharded stage on several workers needs the stock or builtin kernels in every process, but this one runs ${k}: train with workers 1`);
  return trainingEngine(k, 1);
}

/** The step a stage's checkpoint resumes from (0 without one). */
function resumeStep(dir: string): number {
  const file = path.join(dir, 'state.json');
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as { step: number }).step : 0;
}

/** The kernel set the running engine trains on, in trainingEngine's words (else what it is). */
function runningKernels(): string {
  const e = engineInfo();
  if (!e) return 'no engine (initEngine was not called)';
  if (e.provider !== 'wasm') return `the ${e.provider} backend`;
  const nat = e.nativeMatMul;
  if (!nat.enabled) return e.nativeOps.enabled ? 'stock matMul with the fused ops' : 'stock';
  return isBuiltinGemm(nat.library) ? 'builtin' : `a system BLAS (${nat.library ?? '?'})`;
}

export const DEFAULT_RECIPE: TeachingRecipe = {
  lm: { d: 64, layers: 6, heads: 4, inter: 128, ropeTheta: 10000, eps: 1e-5 },
  vit: { patch: 8, d: 64, layers: 3, heads: 4, inter: 128, eps: 1e-5 },
  featureLayer: -1,
  // 48 extra rendered views per entity for the vision stages (4 train views alone do not generalise).
  extraViews: 48,
  // Small batches: per epoch, batch 32 memorises facts about twice as fast as 128 (text QA 24% vs 13% after
  // 6.4 epochs) at about the same cost per epoch on one wasm thread; memorisation sets in after ~10 epochs.
  stages: {
    lm: { steps: 3000, batch: 32, lr: 2e-3, warmup: 50 },
    vision: { steps: 1500, batch: 64, lr: 3e-3, warmup: 30 },
    align: { steps: 300, batch: 32, lr: 2e-3, warmup: 20 },
    instruct: { steps: 2000, batch: 32, lr: 1e-3, warmup: 30 },
    ground: { steps: 1500, batch: 32, lr: 2e-3, warmup: 30 },
    readout: { steps: 1000, batch: 32, lr: 1e-3, warmup: 30 },
  },
  // Identification x6 per epoch: at x2 the VLM named only ~60% of entities, even on trained views.
  instructMix: { identification: 6, visualQa: true, visualCot: true, textReplay: true },
  instructLm: 'all',
  ground: null,
};

export interface TrainOptions {
  seed: number;
  dataDir: string;
  /** HF folder to write (the VLM; its text backbone goes to outDir/backbone unless backboneDir says where). */
  outDir?: string;
  /** Where the backbone folder goes when VLMs share it (config.json of the VLM names it, relative). */
  backboneDir?: string;
  runDir: string;
  stages?: StageName[];
  recipe?: Partial<TeachingRecipe>;
  /**
   * Another seed for single stages: their data order, views and (grounding) the blocks dealt, never the
   * weights they start from. A recipe's spread over its tuning stages is then measured on one backbone and
   * one vision tower, without retraining them (a new `seed` reinitialises every stage's weights).
   */
  stageSeeds?: Partial<Record<StageName, number>>;
  onProgress?: (p: Progress) => void;
  /** Test hook: interrupt the given stage at this step (after checkpointing). */
  stopAt?: { stage: StageName; step: number };
  /**
   * Threads (this one and worker threads) that compute a sharded stage's shards, at most its `shards`; the
   * weights are the same for any number (src/train/shards.ts). Default 1.
   */
  workers?: number;
  /** Internal: this process is a replica of a sharded stage (src/train/replica.ts); it writes nothing. */
  replica?: { stage: StageName; handle: ShardHandle };
}

export interface TrainResult {
  spec: ExportSpec;
  params: Map<string, HostTensor>;
  /** Params of the text LM after stage (a): the backbone. */
  backbone?: Map<string, HostTensor>;
  seconds: Record<string, number>;
  finalLoss: Record<string, number>;
  stoppedEarly: boolean;
  numParams: { lm: number; vision: number; projector: number };
}

/**
 * The recipe as the weights record it (safetensors metadata `hopscope_recipe`): the stages a recipe does not
 * run are left out (without grounding, the grounding and readout fields), so a default run still writes the
 * shipped v5 files byte for byte.
 */
export function recipeMetadata(seed: number, recipe: TeachingRecipe, stageSeeds: Partial<Record<StageName, number>> = {}): { hopscope_recipe: string } {
  const { ground: groundStage, readout: readoutStage, ...stages } = recipe.stages;
  const { ground, readout, ...rest } = recipe;
  const used = {
    ...(ground ? { ground } : {}),
    ...(ground && readout ? { readout } : {}),
    stages: { ...stages, ...(ground ? { ground: groundStage } : {}), ...(ground && readout ? { readout: readoutStage } : {}) },
  };
  return { hopscope_recipe: JSON.stringify({ seed, ...seedsField(stageSeeds), recipe: { ...rest, ...used } }) };
}

/**
 * What a shared backbone folder records (`--backbone-dir`): the part of the recipe that made it, so VLMs whose
 * recipes share it can share the folder (test/data/teaching-models.test.ts checks the pair's).
 */
export function backboneMetadata(seed: number, recipe: TeachingRecipe, stageSeeds: Partial<Record<StageName, number>> = {}): { hopscope_recipe: string } {
  const kernels = recipe.kernels ? { kernels: recipe.kernels } : {};
  const readBy = recipe.lmReadBy ? { lmReadBy: recipe.lmReadBy } : {};
  const lmSeed = stageSeeds.lm !== undefined ? { lm: stageSeeds.lm } : {};
  return { hopscope_recipe: JSON.stringify({ seed, ...seedsField(lmSeed), lm: recipe.lm, lmNameFirst: recipe.lmNameFirst ?? false, stage: recipe.stages.lm, ...kernels, ...readBy }) };
}

/** `stageSeeds` as given, or an error naming the entry that is not a stage with a non-negative integer seed. */
export function checkStageSeeds(stageSeeds: Record<string, number>): Partial<Record<StageName, number>> {
  for (const [s, v] of Object.entries(stageSeeds))
    if (!STAGES.includes(s as StageName) || !Number.isInteger(v) || v < 0) throw new Error(`stageSeeds: ${s}=${v}: expected a stage (${STAGES.join(', ')}) and a non-negative integer`);
  return stageSeeds;
}

/** The stage seeds as the metadata records them: absent when none is set, so default runs keep their bytes. */
function seedsField(stageSeeds: Partial<Record<StageName, number>>): { stageSeeds?: Partial<Record<StageName, number>> } {
  const set = STAGES.filter((s) => stageSeeds[s] !== undefined);
  return set.length ? { stageSeeds: Object.fromEntries(set.map((s) => [s, stageSeeds[s]])) } : {};
}

export function resolveRecipe(r: Partial<TeachingRecipe> = {}): TeachingRecipe {
  return {
    ...DEFAULT_RECIPE,
    ...r,
    stages: { ...DEFAULT_RECIPE.stages, ...(r.stages ?? {}) },
    instructMix: { ...DEFAULT_RECIPE.instructMix, ...(r.instructMix ?? {}) },
  };
}

export function exportSpec(data: TeachingData, recipe: TeachingRecipe): ExportSpec {
  const tok = data.tokenizer;
  return {
    lm: { ...recipe.lm, vocab: tok.vocabSize },
    vit: { ...recipe.vit, image: data.imageSize },
    featureLayer: recipe.featureLayer,
    imageTokenId: data.imageTokenId,
    bosId: tok.bosTokenId!,
    eosId: tok.eosTokenId!,
    padId: tok.padTokenId!,
  };
}

/** A pool of rendered training views on the device: pixels [E*V, 3, S, S]; row of (entity, slot) = entity*V + slot. */
function viewPool(data: TeachingData, extra: number): { pixels: tf.Tensor; perEntity: number } {
  const views = trainingViewIds(data, extra);
  const rgbs = data.entities.flatMap((e) => views.map((v) => viewRgb(data, e, v)));
  const S = data.imageSize;
  return { pixels: tf.tensor4d(pixelsOf(data, rgbs), [rgbs.length, 3, S, S]), perEntity: views.length };
}

/** A view slot per row, a pure function of (seed, stage, step, row). */
function viewRows(seed: number, stage: string, step: number, entities: number[], perEntity: number): number[] {
  const rng = mulberry32(hashSeed(seed, stage, 'views', step));
  return entities.map((e) => e * perEntity + Math.floor(rng() * perEntity));
}

function memoBatcher(examples: Example[], batch: number, seed: number, stage: string, padId: number): (step: number) => Batch {
  const perEpoch = epochBatches(examples, batch, seed, stage, 0, padId).length;
  let cacheEpoch = -1;
  let batches: Batch[] = [];
  return (step) => {
    const epoch = Math.floor(step / perEpoch);
    if (epoch !== cacheEpoch) {
      batches = epochBatches(examples, batch, seed, stage, epoch, padId);
      cacheEpoch = epoch;
    }
    return batches[step % perEpoch];
  };
}

export async function trainTeachingModel(opts: TrainOptions): Promise<TrainResult> {
  const recipe = resolveRecipe(opts.recipe);
  // A recipe that names its kernels records them in the weights' metadata: refuse to train it on others. (Unset,
  // the recipe runs on the caller's engine, as the toy-sized tests do; src/train/cli.ts starts stock for it.)
  if (recipe.kernels && runningKernels() !== recipe.kernels) {
    throw new Error(`recipe.kernels is ${recipe.kernels} but the engine runs ${runningKernels()}: start it with initEngine(trainingEngine(recipe.kernels)), as src/train/cli.ts does`);
  }
  const data = loadTeachingData(opts.dataDir);
  const spec = exportSpec(data, recipe);
  const stages = new Set(opts.stages ?? STAGES);
  const seed = opts.seed;
  const stageSeeds = checkStageSeeds(opts.stageSeeds ?? {});
  // Initial weights always come from `seed`; a stage's data order and views from its own seed when it has one.
  const seedOf = (stage: StageName): number => stageSeeds[stage] ?? seed;
  const pad = spec.padId;
  const replica = opts.replica;
  if (replica && (opts.outDir || opts.backboneDir || opts.stages?.length !== 1 || opts.stages[0] !== replica.stage))
    throw new Error(`a replica runs its stage (${replica.stage}) alone and writes nothing`);
  const workers = opts.workers ?? 1;
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`workers ${workers}: expected a positive integer`);
  for (const [name, r] of Object.entries(recipe.stages))
    if (r.shards !== undefined && (!Number.isInteger(r.shards) || r.shards < 1 || r.shards > r.batch))
      throw new Error(`recipe.stages.${name}.shards ${r.shards}: expected an integer 1..batch (${r.batch})`);
  fs.mkdirSync(opts.runDir, { recursive: true });
  if (!replica) fs.writeFileSync(path.join(opts.runDir, 'recipe.json'), JSON.stringify({ seed, ...seedsField(stageSeeds), dataDir: opts.dataDir, recipe, spec }, null, 1));
  const seconds: Record<string, number> = {};
  const finalLoss: Record<string, number> = {};
  const nTokens = (spec.vit.image / spec.vit.patch) ** 2;
  const stageFile = (s: StageName) => path.join(opts.runDir, s, 'params.safetensors');
  const stopAt = (s: StageName) => (opts.stopAt?.stage === s ? opts.stopAt.step : undefined);

  // Everything the model holds, on the host between stages.
  let host = new Map<string, HostTensor>([...initLm(seed, spec.lm), ...initVit(seed, spec.vit, data.entities.length), ...initProjector(seed, spec.vit.d, spec.lm.d)]);
  const numParams = {
    lm: countParams(new Map([...host].filter(([k]) => k.startsWith('lm.')))),
    vision: countParams(new Map([...host].filter(([k]) => k.startsWith('vis.')))),
    projector: countParams(new Map([...host].filter(([k]) => k.startsWith('proj.')))),
  };
  let backbone: Map<string, HostTensor> | undefined;
  let stopped = false;

  const replicaExits: Promise<number>[] = [];
  /**
   * A sharded stage's group: a replica joins the one it was handed; the main thread makes one for `workers`
   * threads and starts the replicas, which rebuild this stage from the run folder as this thread did.
   */
  const shardGroup = (name: StageName, trainable: Params): ShardGroup | undefined => {
    const shards = recipe.stages[name].shards ?? 1;
    if (shards === 1) return undefined;
    const size = countParams(trainable);
    if (replica) {
      if (replica.handle.size !== size || replica.handle.shards !== shards) throw new Error(`replica of ${name}: ${size} parameters in ${shards} shards, the group has ${replica.handle.size} in ${replica.handle.shards}`);
      return ShardGroup.join(replica.handle);
    }
    const group = ShardGroup.create(shards, Math.min(workers, shards), size);
    group.start(resumeStep(path.join(opts.runDir, name)));
    for (let rank = 1; rank < group.procs; rank++) {
      const { onProgress: _p, workers: _w, outDir: _o, backboneDir: _b, stopAt, ...rest } = opts;
      const data: ReplicaData = { opts: { ...rest, stopAt, stages: [name], replica: { stage: name, handle: group.handle(rank) } }, engine: replicaEngine() };
      replicaExits.push(startReplica(path.join(__dirname, `replica${path.extname(__filename)}`), data));
    }
    return group;
  };

  const runStage = (name: StageName, trainable: Params, frozen: Params, batch: (step: number) => unknown, loss: Parameters<typeof trainLoop>[0]['loss']) => {
    const r = recipe.stages[name];
    const res = trainLoop({
      group: shardGroup(name, trainable),
      stage: name,
      steps: r.steps,
      batch,
      loss,
      trainable,
      frozen,
      lr: r.lr,
      warmup: r.warmup,
      clip: 1,
      dir: path.join(opts.runDir, name),
      ckptEvery: 100,
      stopAt: stopAt(name),
      onProgress: opts.onProgress,
    });
    seconds[name] = res.seconds;
    finalLoss[name] = res.losses.length ? mean(res.losses.slice(-20)) : NaN;
    for (const [k, v] of toHost(res.params)) host.set(k, v);
    disposeParams(res.params);
    if (!res.done) stopped = true;
    else if (!replica) writeHost(stageFile(name), host);
    return res.done;
  };

  const loadFinished = (name: StageName): boolean => {
    if (!fs.existsSync(stageFile(name))) return false;
    // Only what the stage trained: LM and vision pretraining are independent and may run in separate
    // processes (cli.ts --jobs), so each stage file also holds the other tower at its initial values.
    for (const [k, v] of readHost(stageFile(name))) if (STAGE_OWNS[name].some((p) => k.startsWith(p))) host.set(k, v);
    const st = JSON.parse(fs.readFileSync(path.join(opts.runDir, name, 'state.json'), 'utf8')) as { seconds: number; losses: number[] };
    seconds[name] = st.seconds;
    finalLoss[name] = mean(st.losses.slice(-20));
    return true;
  };

  const final: StageName = recipe.ground ? 'ground' : 'instruct';
  if (recipe.readout && !recipe.ground) throw new Error('recipe.readout needs recipe.ground (it tunes the LM after grounding)');
  if (recipe.readout && (!Number.isInteger(recipe.readout.from) || recipe.readout.from < 0 || recipe.readout.from >= spec.lm.layers))
    throw new Error(`recipe.readout.from ${recipe.readout.from}: expected a block 0..${spec.lm.layers - 1}`);
  // Both deadlines (the readout's on the image, the backbone's on the subject) need a block above 0 and a weight.
  const checkReadBy = (field: string, r: { layer: number; weight: number } | undefined) => {
    if (r && (!Number.isInteger(r.layer) || r.layer < 1 || r.layer >= spec.lm.layers || !(r.weight > 0)))
      throw new Error(`recipe.${field}: expected a block 1..${spec.lm.layers - 1} and a weight > 0 (got ${JSON.stringify(r)})`);
  };
  const readBy = recipe.readout?.readBy;
  checkReadBy('readout.readBy', readBy);
  const lmReadBy = recipe.lmReadBy;
  checkReadBy('lmReadBy', lmReadBy);
  if (lmReadBy?.on !== undefined && lmReadBy.on !== 'all' && lmReadBy.on !== 'span') throw new Error(`recipe.lmReadBy.on: expected 'all' or 'span' (got ${JSON.stringify(lmReadBy.on)})`);
  if (lmReadBy?.on === 'span' && recipe.lmNameFirst !== 'span') throw new Error("recipe.lmReadBy.on 'span' needs lmNameFirst: 'span' (the span twins)");
  for (const name of STAGES) {
    if (stopped) break;
    if ((name === 'instruct' || name === 'ground') && name !== final) continue;
    if (name === 'readout' && !recipe.readout) continue;
    if (!stages.has(name)) {
      if (loadFinished(name) && name === 'lm') backbone = new Map(host);
      continue;
    }
    if (loadFinished(name)) {
      if (name === 'lm') backbone = new Map(host);
      continue;
    }
    const dev = toDevice(host);
    try {
      if (name === 'lm') {
        const ex = lmExamples(data, recipe.lmNameFirst === 'span' ? { span: nTokens, copies: recipe.lmCopies ?? 0 } : { nameFirst: recipe.lmNameFirst ?? false });
        runStage(name, pick(dev, 'lm.'), new Map(), memoBatcher(ex, recipe.stages.lm.batch, seedOf(name), name, pad), (get, b) => {
          const batch = b as Batch;
          const regions = lmReadBy && batch.subjects ? batch.subjects.map((s) => (s && (lmReadBy.on !== 'span' || s.span) ? s : null)) : null;
          const trace = regions?.some(Boolean) ? { attention: [] as tf.Tensor[] } : undefined;
          const loss = tokenLoss(lmForward(get, spec.lm, embedWithImages(get, spec.lm, batch.ids, data.imageTokenId, null), trace), batch.targets);
          if (!trace || !lmReadBy || !regions) return loss;
          return tf.add(loss, tf.mul(lmReadBy.weight, regionReadMass(trace.attention.slice(lmReadBy.layer), batch.ids, regions, pad, spec.lm.heads)));
        });
        backbone = new Map(host);
      } else if (name === 'vision') {
        const pool = viewPool(data, recipe.extraViews);
        try {
          const items = data.entities.flatMap((e) => Array.from({ length: pool.perEntity }, (_, v) => e.index * pool.perEntity + v));
          const perEpoch = Math.ceil(items.length / recipe.stages.vision.batch);
          const batch = (step: number) => {
            const order = shuffledIdx(items.length, hashSeed(seedOf(name), name, Math.floor(step / perEpoch)));
            const k = step % perEpoch;
            return order.slice(k * recipe.stages.vision.batch, (k + 1) * recipe.stages.vision.batch).map((i) => items[i]);
          };
          runStage(name, new Map([...pick(dev, 'vis.'), ...pick(dev, 'vhead.')]), new Map(), batch, (get, b) => {
            const rows = b as number[];
            const px = tf.gather(pool.pixels, tf.tensor1d(rows, 'int32'));
            const logits = vitClassify(get, spec.vit, px);
            return tokenLoss(logits.reshape([rows.length, 1, -1]), rows.map((r) => [Math.floor(r / pool.perEntity)]));
          });
        } finally {
          pool.pixels.dispose();
        }
      } else if (name === 'ground') {
        runGround(name, dev);
      } else {
        // Stages (c), (d) and readout: the ViT is frozen, so its features are computed once for the whole pool.
        const pool = viewPool(data, recipe.extraViews);
        // One tidy per chunk: a single tidy around all chunks holds every chunk's activations until the end,
        // which for 208 x 52 views fills the 4 GB wasm heap.
        const g = getter(dev);
        const parts: tf.Tensor[] = [];
        const n = pool.pixels.shape[0];
        for (let i = 0; i < n; i += 256)
          parts.push(tf.tidy(() => vitFeatures(g, spec.vit, pool.pixels.slice([i, 0, 0, 0], [Math.min(256, n - i), -1, -1, -1]), recipe.featureLayer)));
        const feats = tf.concat(parts, 0);
        tf.dispose(parts);
        pool.pixels.dispose();
        try {
          const ex = name === 'align' ? captionExamples(data, nTokens) : instructExamples(data, nTokens, name === 'readout' ? recipe.readout!.mix : recipe.instructMix);
          const r = recipe.stages[name];
          const batches = memoBatcher(ex, r.batch, seedOf(name), name, pad);
          const batch = (step: number) => {
            const b = batches(step);
            return { ...b, rows: b.entities ? viewRows(seedOf(name), name, step, b.entities, pool.perEntity) : undefined };
          };
          let trainable: Params = pick(dev, 'proj.');
          const frozen: Params = pick(dev, 'lm.');
          if (name === 'readout') {
            // The projector stays where grounding put it; only blocks `from`.. learn.
            for (const [n, t] of trainable) frozen.set(n, t);
            trainable = new Map([...frozen].filter(([n]) => Number(/^lm\.l(\d+)\./.exec(n)?.[1]) >= recipe.readout!.from));
            for (const n of trainable.keys()) frozen.delete(n);
          } else if (name === 'instruct' && recipe.instructLm !== 'none') {
            const k = recipe.instructLm === 'all' ? spec.lm.layers : recipe.instructLm;
            const lmTrain = new Map([...frozen].filter(([n]) => n === 'lm.embed' || n === 'lm.norm' || n === 'lm.head' ? recipe.instructLm === 'all' : Number(/^lm\.l(\d+)\./.exec(n)?.[1]) < k));
            for (const n of lmTrain.keys()) frozen.delete(n);
            trainable = new Map([...trainable, ...lmTrain]);
          }
          runStage(name, trainable, frozen, batch, (get, b) => {
            const bb = b as Batch & { rows?: number[] };
            const img = bb.rows ? project(get, tf.gather(feats, tf.tensor1d(bb.rows, 'int32'))) : null;
            const trace = name === 'readout' && readBy && img ? { attention: [] as tf.Tensor[] } : undefined;
            let loss = tokenLoss(lmForward(get, spec.lm, embedWithImages(get, spec.lm, bb.ids, data.imageTokenId, img), trace), bb.targets);
            if (trace && readBy)
              loss = tf.add(loss, tf.mul(readBy.weight, imageReadMass(trace.attention.slice(readBy.layer), bb.ids, data.imageTokenId, pad, spec.lm.heads)));
            // Text-only batches do not reach the projector; a zero term keeps its gradient defined (and zero).
            return img || name === 'readout' ? loss : tf.add(loss, tf.mul(0, tf.addN(['proj.w1', 'proj.b1', 'proj.w2', 'proj.b2'].map((n) => tf.sum(get(n))))));
          });
        } finally {
          feats.dispose();
        }
      }
    } finally {
      disposeParams(dev);
    }
    // A replica's thread ends with its stage: the next stage waits for it, so no two stages share the cores.
    await Promise.all(replicaExits.splice(0));
  }

  function runGround(name: StageName, dev: Params): void {
    const g = recipe.ground!;
    if (!Number.isInteger(g.layer) || g.layer < 0 || g.layer > spec.lm.layers) throw new Error(`recipe.ground.layer ${g.layer}: expected 0..${spec.lm.layers}`);
    for (const l of g.layers ?? []) if (!Number.isInteger(l) || l < 0 || l > spec.lm.layers) throw new Error(`recipe.ground.layers: ${l} is not a block 0..${spec.lm.layers}`);
    // With `layers`, the absence term is for the entities dealt a block above it (the mixture's late ones); one
    // entity at least must be.
    if (g.absentAt && (g.positions !== 'span' || g.tokenLoss !== false || !Number.isInteger(g.absentAt.layer) || g.absentAt.layer < 0 || g.absentAt.layer >= (g.layers ? Math.max(...g.layers) : g.layer)))
      throw new Error(`recipe.ground.absentAt: needs span positions, tokenLoss: false and a block below ${g.layers ? "some entity's" : "the grounding block"} (got ${JSON.stringify(g.absentAt)})`);
    if ((g.layers || g.positions === 'span') && g.tokenLoss !== false) throw new Error(`recipe.ground.${g.layers ? 'layers' : "positions 'span'"} needs tokenLoss: false (an align-only recipe)`);
    const targetLayer = g.targetLayer ?? g.layer;
    if (!Number.isInteger(targetLayer) || targetLayer < 0 || targetLayer > spec.lm.layers) throw new Error(`recipe.ground.targetLayer ${targetLayer}: expected 0..${spec.lm.layers}`);
    if (g.tokenLoss === false) {
      // Align-only: each entity's target is the backbone's state at min(its block, targetLayer) — an entity
      // aligned at block 0 gets the embedding of its span twin, a late one the fresh state of targetLayer.
      const layerOf = groundLayers(g, data.entities.length, seedOf(name));
      const blocks = [...new Set(layerOf.map((l) => Math.min(l, targetLayer)))];
      const per = new Map(blocks.map((b) => [b, groundTargets(data, spec.lm, getter(dev), b, g.positions === 'span' ? nTokens : undefined, g.fillerWeight)]));
      const pick = (which: 'states' | 'mask') => tf.tidy(() => tf.concat(layerOf.map((l, e) => per.get(Math.min(l, targetLayer))![which].slice([e], [1])), 0));
      const targets = { states: pick('states'), mask: pick('mask') };
      for (const t of per.values()) tf.dispose([t.states, t.mask]);
      // Filler weight 0: the absence term's mask is the name's positions alone (fillers carry no entity).
      const absent = g.absentAt ? groundTargets(data, spec.lm, getter(dev), g.absentAt.layer, nTokens, 0) : null;
      try {
        return runAlignOnly(name, dev, g, targets, viewPool(data, recipe.extraViews), layerOf, absent);
      } finally {
        if (absent) tf.dispose([absent.states, absent.mask]);
      }
    }
    const targets = groundTargets(data, spec.lm, getter(dev), targetLayer, g.positions === 'span' ? nTokens : undefined);
    const pool = viewPool(data, recipe.extraViews);
    const ex = instructExamples(data, nTokens, { ...recipe.instructMix, textReplay: false });
    const r = recipe.stages[name];
    const batches = memoBatcher(ex, r.batch, seedOf(name), name, pad);
    const batch = (step: number) => {
      const b = batches(step);
      return { ...b, rows: viewRows(seedOf(name), name, step, b.entities!, pool.perEntity) };
    };
    const trainViT = g.vit === 'train';
    const trainable: Params = new Map([...pick(dev, 'proj.'), ...(trainViT ? pick(dev, 'vis.') : [])]);
    const frozen: Params = new Map([...pick(dev, 'lm.'), ...(trainViT ? [] : pick(dev, 'vis.'))]);
    try {
      runStage(name, trainable, frozen, batch, (get, b) => {
        const bb = b as Batch & { rows: number[] };
        const px = tf.gather(pool.pixels, tf.tensor1d(bb.rows, 'int32'));
        const img = project(get, vitFeatures(get, spec.vit, px, recipe.featureLayer));
        const trace = { resid: [] as tf.Tensor[] };
        const logits = lmForward(get, spec.lm, embedWithImages(get, spec.lm, bb.ids, data.imageTokenId, img), trace);
        // The image's last K positions against the name's K last tokens (right-aligned; shorter names masked).
        const K = targets.states.shape[1] as number;
        const last = bb.ids[0].lastIndexOf(data.imageTokenId);
        const at = trace.resid[g.layer].slice([0, last - K + 1, 0], [-1, K, -1]);
        const rows = tf.tensor1d(bb.entities!, 'int32');
        const want = tf.gather(targets.states, rows);
        const mask = tf.gather(targets.mask, rows);
        const perPos = tf.mean(tf.square(tf.sub(unitRms(at), want)), -1);
        const align = tf.div(tf.sum(tf.mul(perPos, mask)), tf.sum(mask));
        return tf.add(tokenLoss(logits, bb.targets), tf.mul(g.weight, align));
      });
    } finally {
      pool.pixels.dispose();
      tf.dispose([targets.states, targets.mask]);
    }
  }

  /**
   * Grounding by the alignment term alone: rows are (entity, view) pairs in a seeded order per epoch, the
   * context is the image prompt's prefix ("USER: <image> x N", causal, so later tokens cannot change these
   * states), and the LM runs only the blocks before `layer`.
   */
  function runAlignOnly(
    name: StageName,
    dev: Params,
    g: GroundRecipe,
    targets: { states: tf.Tensor; mask: tf.Tensor },
    pool: { pixels: tf.Tensor; perEntity: number },
    layerOf: number[],
    absent: { states: tf.Tensor; mask: tf.Tensor } | null,
  ): void {
    const r = recipe.stages[name];
    const prefix = promptIds(data, imagePrompt(data, data.templates.identification[data.entities[0].type].query), nTokens);
    const ctx = prefix.slice(0, prefix.lastIndexOf(data.imageTokenId) + 1);
    const K = targets.states.shape[1] as number;
    // The span twin's tokens at the image positions (the token term's labels).
    const start = ctx.indexOf(data.imageTokenId);
    const spanIds = g.layer === 0 && g.positions === 'span' ? data.entities.map((e) => spanPromptIds(data, e, data.templates.identification[e.type].query, nTokens).slice(start, start + nTokens)) : null;
    const items = data.entities.flatMap((e) => Array.from({ length: pool.perEntity }, (_, v) => e.index * pool.perEntity + v));
    const perEpoch = Math.ceil(items.length / r.batch);
    const batch = (step: number) => {
      const order = shuffledIdx(items.length, hashSeed(seedOf(name), name, Math.floor(step / perEpoch)));
      const k = step % perEpoch;
      return order.slice(k * r.batch, (k + 1) * r.batch).map((i) => items[i]);
    };
    const trainViT = g.vit === 'train';
    const trainable: Params = new Map([...pick(dev, 'proj.'), ...(trainViT ? pick(dev, 'vis.') : [])]);
    const frozen: Params = new Map([...pick(dev, 'lm.'), ...(trainViT ? [] : pick(dev, 'vis.'))]);
    try {
      runStage(name, trainable, frozen, batch, (get, b) => {
        const rows = b as number[];
        const px = tf.gather(pool.pixels, tf.tensor1d(rows, 'int32'));
        const img = project(get, vitFeatures(get, spec.vit, px, recipe.featureLayer));
        const trace = { resid: [] as tf.Tensor[] };
        const entOf = rows.map((row) => Math.floor(row / pool.perEntity));
        lmForward(get, { ...spec.lm, layers: Math.max(...entOf.map((e) => layerOf[e])) }, embedWithImages(get, spec.lm, rows.map(() => ctx), data.imageTokenId, img), trace);
        const at = tf.concat(entOf.map((e, i) => trace.resid[layerOf[e]].slice([i, ctx.length - K, 0], [1, K, -1])), 0);
        const ent = tf.tensor1d(entOf, 'int32');
        const want = tf.gather(targets.states, ent);
        // Span targets are raw states and the error is relative to their size: the residual's scale matters to
        // the blocks after it (a scale-free loss let the image embeddings grow to 1,000x the tokens' norm, and the
        // backbone read them as noise: 22 of 48 identified with 36 of 42 spans nearest the right tokens).
        const perPos = g.positions === 'span'
          ? tf.div(tf.mean(tf.square(tf.sub(at, want)), -1), tf.add(tf.mean(tf.square(want), -1), 1e-12))
          : tf.mean(tf.square(tf.sub(unitRms(at), want)), -1);
        const mask = tf.gather(targets.mask, ent);
        let align = tf.div(tf.sum(tf.mul(perPos, mask)), tf.sum(mask));
        // A mixture's early entities (dealt a block at or below the absence block) are meant to be there: exempt.
        const late = absent && g.absentAt ? absenceRows(layerOf, g.absentAt.layer, entOf) : [];
        if (absent && g.absentAt && late.includes(1)) {
          // The name's positions only (absent.mask): squared cosine to the entity's own state there. (x 1 is exact,
          // so a recipe that deals every entity above the block sums the same bits as before the exemption.)
          const early = tf.concat(entOf.map((_, i) => trace.resid[g.absentAt!.layer].slice([i, ctx.length - K, 0], [1, K, -1])), 0);
          const own = tf.gather(absent.states, ent);
          const cos = tf.div(tf.sum(tf.mul(early, own), -1), tf.add(tf.mul(tf.norm(early, 2, -1), tf.norm(own, 2, -1)), 1e-12));
          const names = tf.mul(tf.gather(absent.mask, ent), tf.tensor2d(late, [late.length, 1]));
          align = tf.add(align, tf.mul(g.absentAt.weight, tf.div(tf.sum(tf.mul(tf.square(cos), names)), tf.sum(names))));
        }
        if (!g.tokenCe || !spanIds) return align;
        const table = unitRms(get('lm.embed'));
        const logits = tf.div(tf.matMul(unitRms(at).reshape([-1, spec.lm.d]), table, false, true), Math.sqrt(spec.lm.d));
        const labels = rows.map((row) => spanIds[Math.floor(row / pool.perEntity)]);
        return tf.add(align, tf.mul(g.tokenCe, tokenLoss(logits.reshape([rows.length, K, -1]), labels)));
      });
    } finally {
      pool.pixels.dispose();
      tf.dispose([targets.states, targets.mask]);
    }
  }

  if (replica) return { spec, params: host, backbone, seconds, finalLoss, stoppedEarly: stopped, numParams };
  if (!stopped && opts.outDir) {
    const meta = recipeMetadata(seed, recipe, stageSeeds);
    saveLlavaFolder(opts.outDir, host, spec, data.dir, meta, opts.backboneDir);
    // A shared backbone's metadata is the LM recipe only, so two VLMs on it write the same bytes; a VLM's own
    // backbone/ keeps the whole recipe, as the shipped v5 folder has it (its reproduction is byte for byte).
    const bbMeta = opts.backboneDir ? backboneMetadata(seed, recipe, stageSeeds) : meta;
    if (backbone) saveBackboneFolder(opts.backboneDir ?? path.join(opts.outDir, 'backbone'), new Map([...backbone].filter(([k]) => k.startsWith('lm.'))), spec, data.dir, bbMeta);
  }
  fs.writeFileSync(path.join(opts.runDir, 'summary.json'), JSON.stringify({ seconds, finalLoss, numParams, stopped }, null, 1));
  return { spec, params: host, backbone, seconds, finalLoss, stoppedEarly: stopped, numParams };
}

/** x / rms(x) over the last axis: the scale-free direction the LM's RMSNorm reads. */
function unitRms(x: tf.Tensor): tf.Tensor {
  return tf.div(x, tf.sqrt(tf.add(tf.mean(tf.square(x), -1, true), 1e-6)));
}

/**
 * The backbone's residuals (input of block `layer`, RMS-normalised) at the tokens of each entity's name, in
 * the context the image takes in the instruction template ("USER: <image>..." with the name for the image),
 * right-aligned to the longest name: states [entities, K, D] and mask [entities, K] (1 = a name token).
 * Every name token, not only the last: the backbone names an entity by copying its tokens from context
 * (its CoT data), and answers "USER: {name}\n{question about the person in this image}" in 21 of 24 held-out
 * pairs, so image positions that carry the name's token states let its own circuits run (session 4 notes).
 */
export function groundTargets(data: TeachingData, lm: LmSize, get: (n: string) => tf.Tensor, layer: number, span?: number, fillerWeight = 1): { states: tf.Tensor; mask: tf.Tensor } {
  if (span) return spanTargets(data, lm, get, layer, span, fillerWeight);
  const tok = data.tokenizer;
  const prefix = data.templates.promptTemplate.image.split(data.templates.promptTemplate.imageToken)[0].trimEnd();
  const preIds = tok.encode(prefix);
  const pre = preIds.length;
  const rows = data.entities.map((e) => tok.encode(`${prefix} ${e.subject}`));
  for (const [i, ids] of rows.entries())
    if (ids.length <= pre || preIds.some((t, j) => ids[j] !== t)) throw new Error(`groundTargets: "${prefix} ${data.entities[i].subject}" does not tokenise as the prefix then the name`);
  const K = Math.max(...rows.map((ids) => ids.length - pre));
  return tf.tidy(() => {
    const states: tf.Tensor[] = [];
    const mask: number[][] = [];
    for (const ids of rows) {
      const k = ids.length - pre;
      const trace = { resid: [] as tf.Tensor[] };
      lmForward(get, lm, embedWithImages(get, lm, [ids], data.imageTokenId, null), trace);
      const name = unitRms(trace.resid[layer].slice([0, pre, 0], [1, k, -1]));
      states.push(k < K ? tf.concat([tf.zeros([1, K - k, lm.d]), name], 1) : name);
      mask.push([...new Array<number>(K - k).fill(0), ...new Array<number>(k).fill(1)]);
    }
    return { states: tf.concat(states, 0), mask: tf.tensor2d(mask) };
  });
}

/**
 * The backbone's raw states (input of block `layer`) at all `span` image positions of each entity's span twin:
 * [entities, span, D]; the mask weighs the name's positions 1 and the `<unk>` fillers `fillerWeight`.
 */
function spanTargets(data: TeachingData, lm: LmSize, get: (n: string) => tf.Tensor, layer: number, span: number, fillerWeight: number): { states: tf.Tensor; mask: tf.Tensor } {
  const query = data.templates.identification[data.entities[0].type].query;
  const weights = data.entities.map((e) => {
    const k = data.tokenizer.encode(e.subject, { addSpecialTokens: false }).length;
    return [...new Array<number>(span - k).fill(fillerWeight), ...new Array<number>(k).fill(1)];
  });
  return tf.tidy(() => {
    const states = data.entities.map((e) => {
      // The image prompt's prefix up to its last image position, with the span twin's tokens there.
      const start = data.tokenizer.encode(imagePrompt(data, query)).indexOf(data.imageTokenId);
      const ctx = spanPromptIds(data, e, query, span).slice(0, start + span);
      const trace = { resid: [] as tf.Tensor[] };
      lmForward(get, { ...lm, layers: layer }, embedWithImages(get, lm, [ctx], data.imageTokenId, null), trace);
      return trace.resid[layer].slice([0, start, 0], [1, span, -1]);
    });
    return { states: tf.concat(states, 0), mask: tf.tensor2d(weights) };
  });
}

/**
 * Per batch row (`entOf`: its entity), 1 where the absence term applies: the entity is dealt a block above the
 * absence block. A mixture's early entities, dealt at or below it, are meant to hold the entity there.
 */
export function absenceRows(layerOf: readonly number[], absentLayer: number, entOf: readonly number[]): number[] {
  return entOf.map((e) => (layerOf[e] > absentLayer ? 1 : 0));
}

/** The block each entity is aligned at: `layer`, or `layers` dealt round-robin over a seeded order of the entities. */
export function groundLayers(g: Pick<GroundRecipe, 'layer' | 'layers'>, entities: number, seed: number): number[] {
  if (!g.layers?.length) return new Array<number>(entities).fill(g.layer);
  const out = new Array<number>(entities);
  shuffledIdx(entities, hashSeed(seed, 'ground-layers')).forEach((e, i) => (out[e] = g.layers![i % g.layers!.length]));
  return out;
}

function shuffledIdx(n: number, seed: number): number[] {
  const rng = mulberry32(seed);
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
}
