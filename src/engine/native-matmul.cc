// Optional native kernels for tfjs: a thin N-API wrapper over cblas_sgemm from the system BLAS (OpenBLAS),
// loaded with dlopen at run time so the addon builds without BLAS headers and fails soft without the library,
// and a multi-threaded 32-bit transpose for loading checkpoints (needs no BLAS). Built at install by
// scripts/build-native.ts (g++ straight, no node-gyp); the wasm path stays the default.
#include <node_api.h>
#include <dlfcn.h>
#include <sys/mman.h>
#include <algorithm>
#include <cerrno>
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

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"load", nullptr, Load, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setThreads", nullptr, SetThreads, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"sgemm", nullptr, Sgemm, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"transpose32", nullptr, Transpose32, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"adviseHuge", nullptr, AdviseHuge, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, 5, props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
