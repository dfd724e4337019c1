// Optional native kernels for tfjs: a thin N-API wrapper over cblas_sgemm from the system BLAS (OpenBLAS),
// loaded with dlopen at run time so the addon builds without BLAS headers and fails soft without the library,
// a multi-threaded 32-bit transpose for loading checkpoints, and fused non-GEMM kernels (norms, RoPE, masked
// softmax, the attention transpose; src/engine/native-ops.ts) which, like the transpose, need no BLAS. Built at install by
// scripts/build-native.ts (g++ straight, no node-gyp); the wasm path stays the default.
#include <node_api.h>
#include <dlfcn.h>
#include <sys/mman.h>
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

typedef void (*sgemm_fn)(int order, int transA, int transB, int M, int N, int K, float alpha, const float* A, int lda,
                         const float* B, int ldb, float beta, float* C, int ldc);
typedef void (*set_threads_fn)(int);
typedef int (*get_threads_fn)(void);

static sgemm_fn g_sgemm = nullptr;
static set_threads_fn g_set_threads = nullptr;
static get_threads_fn g_get_threads = nullptr;
static std::string g_lib;

static napi_value throw_error(napi_env env, const char* msg) {
  napi_throw_error(env, nullptr, msg);
  return nullptr;
}

// load(paths: string[]) -> name of the library that provides cblas_sgemm (tries them in order)
static napi_value Load(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  uint32_t n = 0;
  napi_get_array_length(env, argv[0], &n);
  std::string tried;
  g_sgemm = nullptr;  // a library replaces whatever ran before (the built-in GEMM, tried first on some CPUs)
  for (uint32_t i = 0; i < n && !g_sgemm; i++) {
    napi_value el;
    napi_get_element(env, argv[0], i, &el);
    char buf[1024];
    size_t len = 0;
    napi_get_value_string_utf8(env, el, buf, sizeof buf, &len);
    void* h = dlopen(buf, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      tried += std::string(buf) + ": " + dlerror() + "; ";
      continue;
    }
    g_sgemm = (sgemm_fn)dlsym(h, "cblas_sgemm");
    g_set_threads = (set_threads_fn)dlsym(h, "openblas_set_num_threads");
    g_get_threads = (get_threads_fn)dlsym(h, "openblas_get_num_threads");
    if (g_sgemm) g_lib = buf;
    else tried += std::string(buf) + ": no cblas_sgemm; ";
  }
  if (!g_sgemm) return throw_error(env, ("no BLAS library with cblas_sgemm: " + tried).c_str());
  napi_value out;
  napi_create_string_utf8(env, g_lib.c_str(), g_lib.size(), &out);
  return out;
}

static napi_value SetThreads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  int32_t n = 1;
  napi_get_value_int32(env, argv[0], &n);
  if (g_set_threads) g_set_threads(n);
  napi_value out;
  napi_create_int32(env, g_get_threads ? g_get_threads() : -1, &out);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// The built-in GEMM: what sgemm runs on when no BLAS library loads (Debian without libopenblas0, CI, a laptop),
// on x86-64 CPUs with AVX2 and FMA. Without it such a machine multiplies on tfjs-wasm's XNNPACK at 15-20 GFLOP/s
// (issue 20) and XNNPACK keeps a packed copy of every weight (peak RSS 2.2x the weights). The classic blocked
// layout (Goto/BLIS): panels of A (MR rows) and B (NR columns) packed per KC-deep block, a 6x16 register-tile
// micro-kernel of FMAs; the output split between threads by columns (or rows, when there are few columns). Each
// output is one sum over k in blocks of KC, so results match a BLAS to float32 rounding, not bit for bit.
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HS_BUILTIN_GEMM 1
// KC is part of the numbers: each output is the sum of its KC-deep partial sums, each an FMA chain from zero in k
// order. Every micro-kernel below keeps that order per output, so they give the same bits (the teaching models are
// trained on this GEMM and reproduce bit for bit on either).
enum { G_MR = 6, G_KC = 256, G_NC = 2048 };
static int g_builtin_threads = 1;

// c[0:mr, 0:nr] += acc, the tile's accumulators stored to t[G_MR][NR] first when the tile is partial.
template <int NR>
static void add_partial(const float (&t)[G_MR][NR], float* c, int64_t ldc, int64_t mr, int64_t nr) {
  for (int64_t i = 0; i < mr; i++)
    for (int64_t j = 0; j < nr; j++) c[i * ldc + j] += t[i][j];
}

// c[0:mr, 0:nr] += a_panel (kc x MR) * b (kc rows of NR floats, ldb apart: a packed panel, or B itself). The
// twelve accumulators are named registers: kept in an array, GCC stored them to the stack on every k, and the
// kernel ran at half the speed (45 against 85-89 GFLOP/s per core on the EPYC of issue 20).
__attribute__((target("avx2,fma"))) static void gemm_tile_avx2(int64_t kc, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t mr, int64_t nr) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00, c40 = c00,
         c41 = c00, c50 = c00, c51 = c00;
  for (int64_t k = 0; k < kc; k++) {
    const __m256 b0 = _mm256_loadu_ps(b + k * ldb), b1 = _mm256_loadu_ps(b + k * ldb + 8);
    const float* ak = a + k * G_MR;
    // Row i of the tile: a[k, i] times both halves of b's row k (a macro, so the accumulators stay named).
#define HS_GEMM_ROW(i)                                  \
  {                                                     \
    const __m256 x = _mm256_broadcast_ss(ak + i);       \
    c##i##0 = _mm256_fmadd_ps(x, b0, c##i##0);          \
    c##i##1 = _mm256_fmadd_ps(x, b1, c##i##1);          \
  }
    HS_GEMM_ROW(0) HS_GEMM_ROW(1) HS_GEMM_ROW(2) HS_GEMM_ROW(3) HS_GEMM_ROW(4) HS_GEMM_ROW(5)
#undef HS_GEMM_ROW
  }
  const __m256 acc[G_MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  if (mr == G_MR && nr == 16) {
    for (int i = 0; i < G_MR; i++) {
      float* ci = c + i * ldc;
      _mm256_storeu_ps(ci, _mm256_add_ps(_mm256_loadu_ps(ci), acc[i][0]));
      _mm256_storeu_ps(ci + 8, _mm256_add_ps(_mm256_loadu_ps(ci + 8), acc[i][1]));
    }
    return;
  }
  alignas(32) float t[G_MR][16];
  for (int i = 0; i < G_MR; i++) {
    _mm256_store_ps(t[i], acc[i][0]);
    _mm256_store_ps(t[i] + 8, acc[i][1]);
  }
  add_partial<16>(t, c, ldc, mr, nr);
}

// The same tile twice as wide in AVX-512 registers (6 x 32: twelve zmm accumulators), on CPUs that have it: the
// EPYC of issue 20 (Zen 5) runs 512-bit FMAs at full width, twice the flops per instruction of AVX2.
__attribute__((target("avx512f"))) static void gemm_tile_avx512(int64_t kc, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t mr, int64_t nr) {
  __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00, c40 = c00,
         c41 = c00, c50 = c00, c51 = c00;
  for (int64_t k = 0; k < kc; k++) {
    const __m512 b0 = _mm512_loadu_ps(b + k * ldb), b1 = _mm512_loadu_ps(b + k * ldb + 16);
    const float* ak = a + k * G_MR;
#define HS_GEMM_ROW(i)                                  \
  {                                                     \
    const __m512 x = _mm512_set1_ps(ak[i]);             \
    c##i##0 = _mm512_fmadd_ps(x, b0, c##i##0);          \
    c##i##1 = _mm512_fmadd_ps(x, b1, c##i##1);          \
  }
    HS_GEMM_ROW(0) HS_GEMM_ROW(1) HS_GEMM_ROW(2) HS_GEMM_ROW(3) HS_GEMM_ROW(4) HS_GEMM_ROW(5)
#undef HS_GEMM_ROW
  }
  const __m512 acc[G_MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  if (mr == G_MR && nr == 32) {
    for (int i = 0; i < G_MR; i++) {
      float* ci = c + i * ldc;
      _mm512_storeu_ps(ci, _mm512_add_ps(_mm512_loadu_ps(ci), acc[i][0]));
      _mm512_storeu_ps(ci + 16, _mm512_add_ps(_mm512_loadu_ps(ci + 16), acc[i][1]));
    }
    return;
  }
  alignas(64) float t[G_MR][32];
  for (int i = 0; i < G_MR; i++) {
    _mm512_store_ps(t[i], acc[i][0]);
    _mm512_store_ps(t[i] + 16, acc[i][1]);
  }
  add_partial<32>(t, c, ldc, mr, nr);
}

using TileFn = void (*)(int64_t, const float*, const float*, int64_t, float*, int64_t, int64_t, int64_t);
/** The micro-kernel in use and its width (UseBuiltin picks them from the CPU). */
static TileFn g_tile = gemm_tile_avx2;
static int64_t g_nr = 16;
// Rows of A per block (MC; like NC, it changes no sum). 96 for the AVX2 kernel (sized for a 256 KB L2). 288 for the
// AVX-512 one: its CPUs have 1-2 MB of L2, which holds a whole 276-token prompt's A block (288 x 256 floats, 295 KB),
// so each weight panel is read once per KC block instead of once per 96 rows; in a forward every weight comes from
// DRAM (each is used once), where that gave ~6 % (session 18).
static int64_t g_mc = 96;

// Packing buffers, one pair per thread slot, kept across calls: a fresh 2 MB buffer per product cost its page
// faults every time. One set per calling thread (thread_local): a process may call from several JS threads at
// once (worker_threads training shards, src/train/shards.ts), and a shared set let their packs overwrite each
// other's (wrong products, found by test/train/shards.test.ts); slot i of a call belongs to that call's thread i.
struct PackBuffers {
  std::vector<float> b[64], a[64];
};
static PackBuffers& caller_packs() {
  thread_local PackBuffers packs;
  return packs;
}

static void gemm_block(PackBuffers& packs, int slot, int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t K, const float* A, int64_t lda, bool tA,
                       const float* B, int64_t ldb, bool tB, float* C, int64_t ldc) {
  const int64_t NR = g_nr;
  const TileFn tile = g_tile;
  for (int64_t i = i0; i < i1; i++) std::memset(C + i * ldc + j0, 0, sizeof(float) * (j1 - j0));
  std::vector<float>& bp = packs.b[slot];
  std::vector<float>& ap = packs.a[slot];
  if (bp.size() < (size_t)G_KC * (G_NC + NR)) bp.resize((size_t)G_KC * (G_NC + NR));
  const int64_t MC = g_mc;
  if (ap.size() < (size_t)G_KC * (MC + G_MR)) ap.resize((size_t)G_KC * (MC + G_MR));
  // Untransposed B panels are read in place, except where ldb is a multiple of 4 KB: then every row of a panel
  // falls in the same L1 set (64 sets of 64 B lines), 8 ways hold 8 of its kc rows, and the panel is refetched for
  // every row tile. Those shapes (N = 1024, 3072) ran at 104-119 GFLOP/s against 157-166 for the others. Packing
  // changes no sum.
  const bool inPlace = !tB && (ldb * (int64_t)sizeof(float)) % 4096 != 0;
  for (int64_t jc = j0; jc < j1; jc += G_NC) {
    const int64_t nc = std::min<int64_t>(G_NC, j1 - jc);
    for (int64_t pc = 0; pc < K; pc += G_KC) {
      const int64_t kc = std::min<int64_t>(G_KC, K - pc);
      // B[pc:pc+kc, jc+jr : +NR] as kc rows of NR (zero-padded). A whole panel of an untransposed B is read in place
      // (its rows are NR contiguous floats, ldb apart): repacking a weight on every call was ~10 % of a product.
      // Except an aliased B (inPlace, above).
      const auto direct = [&](int64_t jr) { return inPlace && nc - jr >= NR; };
      for (int64_t jr = 0; jr < nc; jr += NR) {
        if (direct(jr)) continue;
        float* dst = bp.data() + jr * kc;
        const int64_t nr = std::min<int64_t>(NR, nc - jr);
        for (int64_t k = 0; k < kc; k++)
          for (int64_t j = 0; j < NR; j++) dst[k * NR + j] = j < nr ? (tB ? B[(jc + jr + j) * ldb + pc + k] : B[(pc + k) * ldb + jc + jr + j]) : 0.f;
      }
      for (int64_t ic = i0; ic < i1; ic += MC) {
        const int64_t mc = std::min<int64_t>(MC, i1 - ic);
        for (int64_t ir = 0; ir < mc; ir += G_MR) {  // A[ic+ir : +MR, pc:pc+kc] as kc columns of MR (zero-padded)
          float* dst = ap.data() + ir * kc;
          const int64_t mr = std::min<int64_t>(G_MR, mc - ir);
          for (int64_t k = 0; k < kc; k++)
            for (int64_t i = 0; i < G_MR; i++) dst[k * G_MR + i] = i < mr ? (tA ? A[(pc + k) * lda + ic + ir + i] : A[(ic + ir + i) * lda + pc + k]) : 0.f;
        }
        for (int64_t jr = 0; jr < nc; jr += NR) {
          const float* bj = direct(jr) ? B + pc * ldb + jc + jr : bp.data() + jr * kc;
          const int64_t ldbj = direct(jr) ? ldb : (int64_t)NR;
          for (int64_t ir = 0; ir < mc; ir += G_MR)
            tile(kc, ap.data() + ir * kc, bj, ldbj, C + (ic + ir) * ldc + jc + jr, ldc, std::min<int64_t>(G_MR, mc - ir),
                      std::min<int64_t>(NR, nc - jr));
        }
      }
    }
  }
}

// cblas_sgemm's signature (row-major, alpha 1, beta 0: all Sgemm asks for), so it slots in for a BLAS.
static void builtin_sgemm(int, int transA, int transB, int M, int N, int K, float, const float* A, int lda, const float* B,
                          int ldb, float, float* C, int ldc) {
  const bool tA = transA == 112, tB = transB == 112;
  if (K == 0) {
    for (int64_t i = 0; i < M; i++) std::memset(C + i * ldc, 0, sizeof(float) * N);
    return;
  }
  // Threads only for products worth a thread start (~20 us): about 2 MFLOP each.
  const int64_t work = (int64_t)M * N * K;
  int64_t t = std::max<int64_t>(1, std::min<int64_t>({(int64_t)g_builtin_threads, 64, work / (1 << 20)}));
  const bool byCols = N / g_nr >= t * 2 || N >= M;
  const int64_t span = byCols ? N : M, unit = byCols ? g_nr : G_MR;
  t = std::max<int64_t>(1, std::min<int64_t>(t, (span + unit - 1) / unit));
  const int64_t per = ((span + t - 1) / t + unit - 1) / unit * unit;
  PackBuffers* packs = &caller_packs();
  auto run = [=](int slot, int64_t a0, int64_t a1) {
    if (byCols) gemm_block(*packs, slot, 0, M, a0, a1, K, A, lda, tA, B, ldb, tB, C, ldc);
    else gemm_block(*packs, slot, a0, a1, 0, N, K, A, lda, tA, B, ldb, tB, C, ldc);
  };
  std::vector<std::thread> pool;
  for (int64_t i = 1; i < t && i * per < span; i++) pool.emplace_back(run, (int)i, i * per, std::min(span, (i + 1) * per));
  run(0, 0, std::min(span, per));
  for (auto& th : pool) th.join();
}
#endif

// useBuiltin(isa?) -> the built-in GEMM's name, made the sgemm in use; throws where the CPU cannot run it. isa
// "avx2" keeps the AVX2 micro-kernel on a CPU with AVX-512 (same bits, for tests and comparisons); "avx512" asks
// for the wide one and throws without it; absent: the widest the CPU has.
static napi_value UseBuiltin(napi_env env, napi_callback_info info) {
#ifdef HS_BUILTIN_GEMM
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  std::string isa;
  if (argc >= 1) {
    napi_valuetype vt;
    napi_typeof(env, argv[0], &vt);
    if (vt == napi_string) {
      char buf[16] = {0};
      size_t n = 0;
      napi_get_value_string_utf8(env, argv[0], buf, sizeof(buf), &n);
      isa = buf;
    } else if (vt != napi_undefined && vt != napi_null) return throw_error(env, "useBuiltin(isa): isa must be a string");
  }
  if (!isa.empty() && isa != "avx2" && isa != "avx512") return throw_error(env, ("the built-in GEMM has no '" + isa + "' kernel (avx2 or avx512)").c_str());
  __builtin_cpu_init();
  if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")))
    return throw_error(env, "the built-in GEMM needs AVX2 and FMA, which this CPU lacks");
  const bool wide = __builtin_cpu_supports("avx512f");
  if (isa == "avx512" && !wide) return throw_error(env, "the built-in GEMM's AVX-512 kernel needs AVX-512F, which this CPU lacks");
  if (wide && isa != "avx2") {
    g_tile = gemm_tile_avx512;
    g_nr = 32;
    g_mc = 288;
    g_lib = "built-in GEMM, AVX-512";
  } else {
    g_tile = gemm_tile_avx2;
    g_nr = 16;
    g_mc = 96;
    g_lib = "built-in GEMM, AVX2+FMA";
  }
  g_sgemm = builtin_sgemm;
  g_set_threads = [](int n) { g_builtin_threads = std::max(1, n); };
  g_get_threads = []() { return g_builtin_threads; };
  napi_value out;
  napi_create_string_utf8(env, g_lib.c_str(), g_lib.size(), &out);
  return out;
#else
  return throw_error(env, "the built-in GEMM is for x86-64 (AVX2 and FMA) only");
#endif
}

// The memory of a typed array of the expected type (its element count in *length), or null for anything else.
static void* typed_data(napi_env env, napi_value v, napi_typedarray_type want, size_t* length) {
  napi_typedarray_type type;
  void* data = nullptr;
  napi_value ab;
  size_t offset = 0;
  if (napi_get_typedarray_info(env, v, &type, length, &data, &ab, &offset) != napi_ok || type != want) return nullptr;
  return data;
}

static float* f32_data(napi_env env, napi_value v, size_t* length) {
  return static_cast<float*>(typed_data(env, v, napi_float32_array, length));
}

// sgemm(a, b, c, batch, M, N, K, transA, transB, strideA, strideB): c[i] = op(a[i]) op(b[i]) for each batch
// entry, row-major; a stride of 0 broadcasts that operand. Bounds are checked against the typed arrays.
static napi_value Sgemm(napi_env env, napi_callback_info info) {
  if (!g_sgemm) return throw_error(env, "native matmul: BLAS not loaded");
  size_t argc = 11;
  napi_value argv[11];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc != 11) return throw_error(env, "native matmul: sgemm takes 11 arguments");
  size_t la, lb, lc;
  float* a = f32_data(env, argv[0], &la);
  float* b = f32_data(env, argv[1], &lb);
  float* c = f32_data(env, argv[2], &lc);
  if (!a || !b || !c) return throw_error(env, "native matmul: a, b, c must be Float32Arrays");
  int64_t v[8];
  for (int i = 0; i < 8; i++) napi_get_value_int64(env, argv[3 + i], &v[i]);
  int64_t batch = v[0], M = v[1], N = v[2], K = v[3], tA = v[4], tB = v[5], sA = v[6], sB = v[7];
  if (batch < 0 || M < 0 || N < 0 || K < 0) return throw_error(env, "native matmul: negative size");
  if ((size_t)(sA * (batch - 1) + M * K) > la || (size_t)(sB * (batch - 1) + K * N) > lb ||
      (size_t)(batch * M * N) > lc)
    return throw_error(env, "native matmul: sizes exceed the arrays");
  const int RowMajor = 101, NoTrans = 111, Trans = 112;
  for (int64_t i = 0; i < batch; i++) {
    if (K == 0) {
      std::memset(c + i * M * N, 0, sizeof(float) * M * N);
      continue;
    }
    g_sgemm(RowMajor, tA ? Trans : NoTrans, tB ? Trans : NoTrans, (int)M, (int)N, (int)K, 1.0f, a + i * sA,
            tA ? (int)M : (int)K, b + i * sB, tB ? (int)K : (int)N, 0.0f, c + i * M * N, (int)N);
  }
  return nullptr;
}

static uint32_t* u32_data(napi_env env, napi_value v, size_t* length) {
  return static_cast<uint32_t*>(typed_data(env, v, napi_uint32_array, length));
}

// transpose32(src, nr, cols, dst, rows, r0, threads): a band of nr rows of a row-major [rows, cols] matrix of
// 32-bit words (src, [nr, cols]) written transposed into dst ([cols, rows]) at rows r0..r0+nr-1:
// dst[c * rows + r0 + r] = src[r * cols + c]. Bit-exact (words, not floats). The columns are split between
// `threads` threads: loading a checkpoint is this transpose and the first touch of the destination's pages,
// and both run in parallel (issue 20: the JS transpose was 2.4-5.8 s of a 1.15 GB load).
static napi_value Transpose32(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc != 7) return throw_error(env, "native transpose: transpose32 takes 7 arguments");
  size_t ls, ld;
  const uint32_t* src = u32_data(env, argv[0], &ls);
  uint32_t* dst = u32_data(env, argv[3], &ld);
  if (!src || !dst) return throw_error(env, "native transpose: src and dst must be Uint32Arrays");
  int64_t nr, cols, rows, r0, threads;
  napi_get_value_int64(env, argv[1], &nr);
  napi_get_value_int64(env, argv[2], &cols);
  napi_get_value_int64(env, argv[4], &rows);
  napi_get_value_int64(env, argv[5], &r0);
  napi_get_value_int64(env, argv[6], &threads);
  if (nr < 0 || cols < 0 || rows < 0 || r0 < 0 || r0 + nr > rows) return throw_error(env, "native transpose: bad band");
  if ((size_t)(nr * cols) > ls || (size_t)(cols * rows) > ld) return throw_error(env, "native transpose: sizes exceed the arrays");
  if (nr == 0 || cols == 0) return nullptr;
  const int64_t TILE = 32;
  auto work = [=](int64_t c0, int64_t c1) {
    for (int64_t cb = c0; cb < c1; cb += TILE) {
      const int64_t ce = std::min(cb + TILE, c1);
      for (int64_t rb = 0; rb < nr; rb += TILE) {
        const int64_t re = std::min(rb + TILE, nr);
        for (int64_t c = cb; c < ce; c++) {
          uint32_t* o = dst + c * rows + r0;
          for (int64_t r = rb; r < re; r++) o[r] = src[r * cols + c];
        }
      }
    }
  };
  // Whole tiles per thread; one thread for a band too small to share.
  int64_t t = std::max<int64_t>(1, std::min<int64_t>({threads, 64, (cols + TILE - 1) / TILE}));
  const int64_t per = ((cols + t - 1) / t + TILE - 1) / TILE * TILE;
  std::vector<std::thread> pool;
  for (int64_t i = 1; i < t && i * per < cols; i++) pool.emplace_back(work, i * per, std::min(cols, (i + 1) * per));
  work(0, std::min(cols, per));
  for (auto& th : pool) th.join();
  return nullptr;
}

// adviseHuge(view): asks the kernel for transparent huge pages (MADV_HUGEPAGE) over the 2 MB-aligned part of a
// typed array's memory, returning the bytes advised (0 when the part is empty, -errno on failure). On a machine
// whose THP mode is "madvise", the wasm heap's weights then fault in 2 MB at a time instead of 4 KB (issue 20:
// first-touching 1.15 GB of heap in 4 KB pages was ~3 s of a checkpoint's load on a VM).
static napi_value AdviseHuge(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  napi_typedarray_type type;
  size_t length = 0, offset = 0;
  void* data = nullptr;
  napi_value ab;
  if (argc != 1 || napi_get_typedarray_info(env, argv[0], &type, &length, &data, &ab, &offset) != napi_ok)
    return throw_error(env, "native adviseHuge: expects a typed array");
  size_t elem = type == napi_int8_array || type == napi_uint8_array || type == napi_uint8_clamped_array ? 1
               : type == napi_int16_array || type == napi_uint16_array ? 2
               : type == napi_float64_array || type == napi_bigint64_array || type == napi_biguint64_array ? 8 : 4;
  const uintptr_t HUGE = 2u << 20;
  uintptr_t lo = ((uintptr_t)data + HUGE - 1) & ~(HUGE - 1);
  uintptr_t hi = ((uintptr_t)data + length * elem) & ~(HUGE - 1);
  int64_t advised = 0;
  if (hi > lo) advised = madvise((void*)lo, hi - lo, MADV_HUGEPAGE) == 0 ? (int64_t)(hi - lo) : -(int64_t)errno;
  napi_value out;
  napi_create_int64(env, advised, &out);
  return out;
}


// ---------------------------------------------------------------------------------------------------------------
// Fused non-GEMM kernels (issue 20, deliverable 2): RMSNorm, LayerNorm, RoPE, softmax with its additive mask and
// the attention's heads/positions transpose, in place on the tensors' memory (the wasm heap or the cpu backend's
// arrays: no copies), split by rows over `threads` threads. Each replaces a chain of 3-7 stock kernels, each a
// pass over the tensor and a JS dispatch. They compute the composite's float32 expressions in the composite's order
// (src/models/layers.ts; the build passes -ffp-contract=off so no FMA changes a rounding); the norms' sums are
// accumulated in double and softmax's exp is the polynomial below, so results agree with the stock kernels to
// float32 rounding, not bit for bit. The activations stay on the stock kernels: a fused SiLU(g)·u here (SSE2,
// the same exp) took 2.6-2.9 ms at [276, 2816] against 1.1-1.2 ms for XNNPACK's SIMD sigmoid and two multiplies.

// Runs f(r0, r1) over [0, rows) on up to `threads` threads; one thread when the whole job is small, since
// starting a thread (~20 us) costs more than a pass over a few hundred thousand floats saves.
template <class F>
static void parallel_rows(int64_t rows, int64_t per_row, int64_t threads, F f) {
  const int64_t MIN_PER_THREAD = 1 << 16;
  int64_t t = std::min<int64_t>({threads, 64, rows, std::max<int64_t>(1, rows * per_row / MIN_PER_THREAD)});
  if (t <= 1) {
    f(0, rows);
    return;
  }
  const int64_t per = (rows + t - 1) / t;
  std::vector<std::thread> pool;
  for (int64_t i = 1; i < t && i * per < rows; i++) pool.emplace_back(f, i * per, std::min(rows, (i + 1) * per));
  f(0, std::min(rows, per));
  for (auto& th : pool) th.join();
}

// Arguments: Float32Arrays (null / undefined allowed where `optional`), then numbers. Sizes are checked by each op.
struct OpArgs {
  napi_env env;
  size_t argc = 16;
  napi_value argv[16];
  bool ok = true;
  const char* name;
  OpArgs(napi_env e, napi_callback_info info, size_t want, const char* n) : env(e), name(n) {
    napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
    if (argc != want) fail("wrong number of arguments");
  }
  void fail(const char* why) {
    if (ok) napi_throw_error(env, nullptr, (std::string("native ") + name + ": " + why).c_str());
    ok = false;
  }
  float* f32(size_t i, size_t need, bool optional = false) {
    napi_valuetype t;
    napi_typeof(env, argv[i], &t);
    if (optional && (t == napi_null || t == napi_undefined)) return nullptr;
    size_t len = 0;
    float* p = f32_data(env, argv[i], &len);
    if (!p) fail("expects Float32Arrays");
    else if (len < need) fail("sizes exceed the arrays");
    return p;
  }
  int64_t i64(size_t i) {
    int64_t v = 0;
    if (napi_get_value_int64(env, argv[i], &v) != napi_ok) fail("expects integer sizes");
    return v;
  }
  double f64(size_t i) {
    double v = 0;
    if (napi_get_value_double(env, argv[i], &v) != napi_ok) fail("expects numbers");
    return v;
  }
};

// norm(x, w, b, out, rows, D, eps, centred, threads), per row of D: LayerNorm when `centred` (biased variance):
// out = ((x - mean) * rsqrt(var + eps)) * w (+ b); RMSNorm otherwise: out = (x * rsqrt(mean(x^2) + eps)) * w, which
// is HF's w * (x * rsqrt(...)) exactly (a product of two floats does not depend on their order). b may be null.
static napi_value Norm(napi_env env, napi_callback_info info) {
  OpArgs a(env, info, 9, "norm");
  int64_t rows = a.i64(4), D = a.i64(5), centred = a.i64(7), threads = a.i64(8);
  float eps = (float)a.f64(6);
  if (a.ok && (rows < 0 || D <= 0)) a.fail("bad sizes");
  const float* x = a.ok ? a.f32(0, rows * D) : nullptr;
  const float* w = a.ok ? a.f32(1, D) : nullptr;
  const float* b = a.ok ? a.f32(2, D, true) : nullptr;
  float* o = a.ok ? a.f32(3, rows * D) : nullptr;
  if (!a.ok) return nullptr;
  parallel_rows(rows, D, threads, [=](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const float* xr = x + r * D;
      float* orow = o + r * D;
      float mean = 0;
      if (centred) {
        double s = 0;
        for (int64_t j = 0; j < D; j++) s += xr[j];
        mean = (float)(s / D);
      }
      double ss = 0;
      for (int64_t j = 0; j < D; j++) {
        const float c = xr[j] - mean;
        ss += (double)c * c;
      }
      const float inv = 1.0f / std::sqrt((float)(ss / D) + eps);
      if (b) for (int64_t j = 0; j < D; j++) orow[j] = ((xr[j] - mean) * inv) * w[j] + b[j];
      else for (int64_t j = 0; j < D; j++) orow[j] = ((xr[j] - mean) * inv) * w[j];
    }
  });
  return nullptr;
}

// The fused kernels' row loops are compiled twice on x86-64, for AVX2 and for the baseline (SSE2), and the loader
// picks one per machine (GCC function multiversioning): one build serves any x86-64, and AVX2 doubles the exp's
// throughput (0.5 against 1.2 ns per float on the 2-core EPYC of issue 20).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define HS_SIMD __attribute__((target_clones("avx2", "default")))
#else
#define HS_SIMD
#endif

// exp(x) for float32 in a form the compiler vectorizes (libm's expf is a scalar call): x = n ln2 + r with
// |r| <= ln2/2 (n rounded by the 1.5 * 2^23 trick, ln2 in two parts: Cody-Waite), Cephes' expf polynomial for e^r,
// 2^n from the exponent bits; within 1e-7 relative of exp. Below -87.34 the result is 0 (masked scores must weigh
// exactly nothing), above 88.72 +Infinity, and NaN stays NaN.
static inline float fexp(float x) {
  const float c = std::min(std::max(x, -87.0f), 88.0f);
  const float z = c * 1.44269504088896341f + 12582912.0f;
  const float fn = z - 12582912.0f;
  int32_t zb;
  std::memcpy(&zb, &z, sizeof zb);
  const float r = (c - fn * 0.693359375f) + fn * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (zb - 0x4B400000 + 127) << 23;  // n + 127 in the exponent field
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  const float e = p * scale;
  return x < -87.3365448f ? 0.0f : x > 88.7228394f ? INFINITY : x != x ? x : e;
}

// rope(x, cos, sin, out, B, H, T, hd, tablesPerBatch, scale, threads): x [B, H, T, hd], cos/sin [B or 1, 1, T, hd];
// out = (x * cos + rotate_half(x) * sin) * scale, rotate_half(x) = concat(-x[hd/2:], x[:hd/2]) (HF).
static napi_value Rope(napi_env env, napi_callback_info info) {
  OpArgs a(env, info, 11, "rope");
  int64_t B = a.i64(4), H = a.i64(5), T = a.i64(6), hd = a.i64(7), perBatch = a.i64(8), threads = a.i64(10);
  float scale = (float)a.f64(9);
  if (a.ok && (B < 0 || H < 0 || T < 0 || hd <= 0 || hd % 2)) a.fail("bad sizes");
  const float* x = a.ok ? a.f32(0, B * H * T * hd) : nullptr;
  const float* c = a.ok ? a.f32(1, (perBatch ? B : 1) * T * hd) : nullptr;
  const float* s = a.ok ? a.f32(2, (perBatch ? B : 1) * T * hd) : nullptr;
  float* o = a.ok ? a.f32(3, B * H * T * hd) : nullptr;
  if (!a.ok) return nullptr;
  const int64_t half = hd / 2;
  parallel_rows(B * H * T, hd, threads, [=](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const int64_t t = r % T, b = r / (H * T);
      const float* xr = x + r * hd;
      const float* cr = c + ((perBatch ? b : 0) * T + t) * hd;
      const float* sr = s + ((perBatch ? b : 0) * T + t) * hd;
      float* orow = o + r * hd;
      for (int64_t i = 0; i < half; i++) orow[i] = (xr[i] * cr[i] + (-xr[i + half]) * sr[i]) * scale;
      for (int64_t i = half; i < hd; i++) orow[i] = (xr[i] * cr[i] + xr[i - half] * sr[i]) * scale;
    }
  });
  return nullptr;
}

// One row of the masked softmax: o = softmax(x + m) (m may be null).
HS_SIMD static void softmax_row(const float* xr, const float* mrow, float* orow, int64_t S) {
  if (mrow) for (int64_t j = 0; j < S; j++) orow[j] = xr[j] + mrow[j];
  else std::memcpy(orow, xr, sizeof(float) * S);
  // Eight partial maxima and sums: the compiler vectorizes them (a single accumulator is a serial chain).
  float lanes[8];
  for (int l = 0; l < 8; l++) lanes[l] = -INFINITY;
  int64_t j = 0;
  for (; j + 8 <= S; j += 8)
    for (int l = 0; l < 8; l++) lanes[l] = orow[j + l] > lanes[l] ? orow[j + l] : lanes[l];
  float mx = -INFINITY;
  for (; j < S; j++) mx = orow[j] > mx ? orow[j] : mx;
  for (int l = 0; l < 8; l++) mx = lanes[l] > mx ? lanes[l] : mx;
  if (mx == -INFINITY) mx = NAN;  // every entry -Infinity: NaN, not 1/S
  for (j = 0; j < S; j++) orow[j] = fexp(orow[j] - mx);
  for (int l = 0; l < 8; l++) lanes[l] = 0;
  for (j = 0; j + 8 <= S; j += 8)
    for (int l = 0; l < 8; l++) lanes[l] += orow[j + l];
  float sum = 0;
  for (; j < S; j++) sum += orow[j];
  for (int l = 0; l < 8; l++) sum += lanes[l];
  const float inv = 1.0f / sum;
  for (j = 0; j < S; j++) orow[j] *= inv;
}

// softmax(x, mask, out, d0, d1, d2, S, m0, m1, m2, threads): softmax over the last axis of x [d0, d1, d2, S] + mask,
// the mask (when given) read at i0 * m0 + i1 * m1 + i2 * m2 (a stride of 0 broadcasts that axis), e.g. scores
// [B, H, T, S] with a [B, 1, T, S] mask. max, exp(v - max), sum, divide: a row whose every entry is -Infinity
// gives NaN, as the stock kernel's arithmetic does.
static napi_value Softmax(napi_env env, napi_callback_info info) {
  OpArgs a(env, info, 11, "softmax");
  int64_t d0 = a.i64(3), d1 = a.i64(4), d2 = a.i64(5), S = a.i64(6), m0 = a.i64(7), m1 = a.i64(8), m2 = a.i64(9), threads = a.i64(10);
  if (a.ok && (d0 < 0 || d1 < 0 || d2 < 0 || S <= 0 || m0 < 0 || m1 < 0 || m2 < 0)) a.fail("bad sizes");
  const int64_t rows = d0 * d1 * d2;
  const float* x = a.ok ? a.f32(0, rows * S) : nullptr;
  const float* m = a.ok ? a.f32(1, rows ? (d0 - 1) * m0 + (d1 - 1) * m1 + (d2 - 1) * m2 + S : 0, true) : nullptr;
  float* o = a.ok ? a.f32(2, rows * S) : nullptr;
  if (!a.ok) return nullptr;
  parallel_rows(rows, S, threads, [=](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++)
      softmax_row(x + r * S, m ? m + (r / (d1 * d2)) * m0 + (r / d2 % d1) * m1 + (r % d2) * m2 : nullptr, o + r * S, S);
  });
  return nullptr;
}

// transpose0213(x, out, A, B, C, D, threads): out[a, c, b, d] = x[a, b, c, d], the attention's heads <-> positions
// swap ([B, T, H, hd] <-> [B, H, T, hd]), copying rows of D contiguous floats.
static napi_value Transpose0213(napi_env env, napi_callback_info info) {
  OpArgs a(env, info, 7, "transpose0213");
  int64_t A = a.i64(2), B = a.i64(3), C = a.i64(4), D = a.i64(5), threads = a.i64(6);
  if (a.ok && (A < 0 || B < 0 || C < 0 || D <= 0)) a.fail("bad sizes");
  const float* x = a.ok ? a.f32(0, A * B * C * D) : nullptr;
  float* o = a.ok ? a.f32(1, A * B * C * D) : nullptr;
  if (!a.ok) return nullptr;
  parallel_rows(A * C, B * D, threads, [=](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {  // r = output (a, c)
      const int64_t ai = r / C, ci = r % C;
      for (int64_t bi = 0; bi < B; bi++) std::memcpy(o + (r * B + bi) * D, x + ((ai * B + bi) * C + ci) * D, sizeof(float) * D);
    }
  });
  return nullptr;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"load", nullptr, Load, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setThreads", nullptr, SetThreads, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"useBuiltin", nullptr, UseBuiltin, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"sgemm", nullptr, Sgemm, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"transpose32", nullptr, Transpose32, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"adviseHuge", nullptr, AdviseHuge, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"norm", nullptr, Norm, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"rope", nullptr, Rope, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"softmax", nullptr, Softmax, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"transpose0213", nullptr, Transpose0213, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
