// graphopt's oneDNN shim: C entry points that graphopt's extern PrimFuncs call on arena pointers.
//
// Why a shim: a kernel the portfolio hands to oneDNN stays a TIR PrimFunc with the same
// parameters as the TVM kernel it replaces (so lifetimes and the arena plan do not change);
// its body calls one of these functions on the buffers' data pointers. The shim creates the
// primitive once per (thread, shape) and then only executes it.
//
// Layouts: activations are the arena's plain NCHW / row-major tensors. Mode 0 ("plain") asks
// oneDNN for a primitive on plain tensors. Mode 1 ("blocked", convolution only) lets oneDNN pick
// its preferred layouts and reorders source, weights and destination on every call into buffers
// carved from the thread's workspace (below). Weights are never cached by
// pointer: a cached reordered copy would be silently stale if another tensor reused the address.
//
// Scratchpad: user-managed (scratchpad_mode::user). Scratchpads and reorder buffers are regions
// of one workspace per thread, as large as the largest kernel's need (a thread runs one kernel at a
// time); graphopt_dnnl_held_bytes reports it.
//
// Threads: the count is graphopt_dnnl_set_threads(n), else TVM_NUM_THREADS (graphopt sets it to
// the physical cores, as TVM's pool uses), else the threading runtime's default. A TBB build
// (PyPI `onednn` 2026) runs each primitive in a tbb::task_arena of that size; an OpenMP build
// (PyPI `onednn-cpu-gomp`) sets omp_set_num_threads on the calling thread.
#include <oneapi/dnnl/dnnl.hpp>
#if DNNL_CPU_THREADING_RUNTIME == DNNL_RUNTIME_TBB
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/version.h>
#elif DNNL_CPU_THREADING_RUNTIME == DNNL_RUNTIME_OMP
#include <omp.h>
#endif

#include <dlfcn.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

struct Kernel {
  dnnl::primitive prim;
  memory::desc src, wei, dst, bias;          // what the primitive takes
  memory::desc user_src, user_wei, user_dst;  // what the arena holds
  memory::desc scratch_md;
  dnnl::reorder to_src, to_wei, from_dst;  // created once, used where a layout differs
  size_t scratch = 0, src_buf = 0, wei_buf = 0, dst_buf = 0;  // bytes of each workspace region (0: none)
  std::string impl;
  bool has_bias = false;
  bool has_sum = false;  // an added tensor: copied into dst, then a sum post-op accumulates onto it
  dnnl::reorder into_dst;  // the added tensor into the primitive's dst layout, where that differs
};

// The epilogue: base-4 digits, least significant first, one per extra pointer:
// 1 = bias (native, first only), 2 = add a tensor of the output's shape, 3 = relu, 0 = end. Bias and
// add steps each take the next extra pointer, in order; relu takes none. The add is a sum post-op
// (dst = conv + dst, on dst pre-filled with the tensor): oneDNN's binary post-op on plain tensors
// fell to its reference kernel here (1.3 s for a 1x1 convolution that takes 4 ms), and sum is what
// its optimized kernels support. One add at most.
constexpr int kBias = 1, kAdd = 2, kRelu = 3, kMaxExtras = 3;

int digit(int64_t post, int i) {
  for (int j = 0; j < i; ++j) post /= 4;
  return static_cast<int>(post % 4);
}

// The PyPI libdnnl is a SYCL build: its CPU engine is the SYCL CPU device, which the OpenCL ICD
// loader finds only through Intel's OpenCL CPU runtime (libintelocl.so, installed beside libdnnl by
// the intel-opencl-rt wheel). Without OCL_ICD_FILENAMES no CPU device exists ("SYCL cpu devices
// queried but not found"), so the shim points the loader at that file unless the user set it.
void point_icd_loader_at_intel_cpu_runtime() {
#if DNNL_CPU_RUNTIME != DNNL_RUNTIME_SYCL
  return;  // a plain CPU build (OpenMP, TBB, sequential) needs no OpenCL
#endif
  Dl_info info{};
  if (std::getenv("OCL_ICD_FILENAMES") != nullptr || dladdr(reinterpret_cast<void*>(&dnnl_engine_create), &info) == 0
      || info.dli_fname == nullptr) {
    return;
  }
  std::string dir(info.dli_fname);
  dir = dir.substr(0, dir.find_last_of('/') + 1);
  setenv("OCL_ICD_FILENAMES", (dir + "libintelocl.so").c_str(), 0);
}

// Why the engine can fail in one process and work in another: every oneTBB since 2021 has the soname
// libtbb.so.12, so whichever library loads one first (OpenVINO 2026 ships 2021.13) serves them all,
// and the SYCL CPU device of the PyPI oneDNN, built on a newer oneTBB, then does not initialise
// (engine creation fails with "invalid arguments"). Returns the cause when that is what happened.
std::string older_tbb_loaded() {
#if DNNL_CPU_THREADING_RUNTIME == DNNL_RUNTIME_TBB
  void* symbol = dlsym(RTLD_DEFAULT, "TBB_runtime_interface_version");
  if (symbol == nullptr) return "";
  const int loaded = reinterpret_cast<int (*)()>(symbol)();
  if (loaded >= TBB_INTERFACE_VERSION) return "";
  Dl_info info{};
  const std::string from = dladdr(symbol, &info) != 0 && info.dli_fname != nullptr ? info.dli_fname : "?";
  return "; this process loaded an older oneTBB (interface " + std::to_string(loaded) + ", " + from +
         ") than oneDNN was built for (" + std::to_string(TBB_INTERFACE_VERSION) +
         "): load the graphopt artifact before that library (e.g. OpenVINO), or run it in its own process";
#else
  return "";
#endif
}

dnnl::engine& cpu_engine() {
  static dnnl::engine engine = [] {
    point_icd_loader_at_intel_cpu_runtime();
    try {
      return dnnl::engine(dnnl::engine::kind::cpu, 0);
    } catch (const dnnl::error& e) {
      throw std::runtime_error(std::string("could not create oneDNN's CPU engine (") + e.what() + ")" +
                               older_tbb_loaded());
    }
  }();
  return engine;
}

dnnl::stream& cpu_stream() {
  thread_local dnnl::stream stream(cpu_engine());
  return stream;
}

std::atomic<int> g_threads{0};

// 0: the threading runtime's default
int wanted_threads() {
  int n = g_threads.load();
  if (n > 0) return n;
  const char* env = std::getenv("TVM_NUM_THREADS");
  n = env != nullptr ? std::atoi(env) : 0;
  return n > 0 ? n : 0;
}

#if DNNL_CPU_THREADING_RUNTIME == DNNL_RUNTIME_TBB
tbb::task_arena& arena_for(int threads) {
  static std::mutex lock;
  static std::map<int, std::unique_ptr<tbb::task_arena>> arenas;
  std::lock_guard<std::mutex> guard(lock);
  auto& slot = arenas[threads];
  if (!slot) slot = std::make_unique<tbb::task_arena>(threads > 0 ? threads : tbb::task_arena::automatic);
  return *slot;
}
#endif

// Runs `f` with the thread count TVM's pool uses (see the file comment).
template <typename F>
void with_threads(F&& f) {
#if DNNL_CPU_THREADING_RUNTIME == DNNL_RUNTIME_TBB
  arena_for(wanted_threads()).execute(f);
#elif DNNL_CPU_THREADING_RUNTIME == DNNL_RUNTIME_OMP
  const int n = wanted_threads();
  if (n > 0 && omp_get_max_threads() != n) omp_set_num_threads(n);
  f();
#else
  f();
#endif
}

thread_local std::unordered_map<std::string, std::unique_ptr<Kernel>> t_cache;

std::string key_of(const char* op, const int64_t* v, int count) {
  std::string key(op);
  for (int i = 0; i < count; ++i) key += "," + std::to_string(v[i]);
  return key;
}

void size_buffers(Kernel& k, const dnnl::primitive_desc& pd) {
  k.impl = pd.impl_info_str();
  k.scratch_md = pd.scratchpad_desc();
  k.scratch = k.scratch_md.get_size();
  auto& e = cpu_engine();
  if (k.src != k.user_src) {
    k.src_buf = k.src.get_size();
    k.to_src = dnnl::reorder(dnnl::reorder::primitive_desc(e, k.user_src, e, k.src));
  }
  if (k.wei != k.user_wei) {
    k.wei_buf = k.wei.get_size();
    k.to_wei = dnnl::reorder(dnnl::reorder::primitive_desc(e, k.user_wei, e, k.wei));
  }
  if (k.dst != k.user_dst) {
    k.dst_buf = k.dst.get_size();
    k.from_dst = dnnl::reorder(dnnl::reorder::primitive_desc(e, k.dst, e, k.user_dst));
    if (k.has_sum) k.into_dst = dnnl::reorder(dnnl::reorder::primitive_desc(e, k.user_dst, e, k.dst));
  }
}

// Post-ops for `post` (bias is the primitive's own argument, not a post-op).
dnnl::primitive_attr attr_with(int64_t post, Kernel& k) {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  dnnl::post_ops ops;
  for (int i = 0; i < kMaxExtras; ++i) {
    const int op = digit(post, i);
    if (op == kBias) {
      if (i != 0) throw std::invalid_argument("bias must be the first epilogue step");
      k.has_bias = true;
    } else if (op == kAdd) {
      if (k.has_sum) throw std::invalid_argument("at most one added tensor");
      k.has_sum = true;
      ops.append_sum(1.f);
    } else if (op == kRelu) {
      ops.append_eltwise(dnnl::algorithm::eltwise_relu, 0.f, 0.f);
    }
  }
  attr.set_post_ops(ops);
  return attr;
}

// v: n c h w o kh kw oh ow sh sw pt pl pb pr dh dw groups post mode
constexpr int kConvArgs = 20;

std::unique_ptr<Kernel> make_conv(const int64_t* v) {
  const int64_t n = v[0], c = v[1], h = v[2], w = v[3], o = v[4], kh = v[5], kw = v[6], oh = v[7], ow = v[8];
  const int64_t groups = v[17], post = v[18], mode = v[19];
  auto k = std::make_unique<Kernel>();
  const bool grouped = groups > 1;
  memory::dims wdims = grouped ? memory::dims{groups, o / groups, c / groups, kh, kw} : memory::dims{o, c, kh, kw};
  k->user_src = memory::desc({n, c, h, w}, dt::f32, tag::nchw);
  k->user_wei = memory::desc(wdims, dt::f32, grouped ? tag::goihw : tag::oihw);
  k->user_dst = memory::desc({n, o, oh, ow}, dt::f32, tag::nchw);
  k->bias = memory::desc({o}, dt::f32, tag::a);
  dnnl::primitive_attr attr = attr_with(post, *k);
  const bool blocked = mode == 1;
  auto src = blocked ? memory::desc({n, c, h, w}, dt::f32, tag::any) : k->user_src;
  auto wei = blocked ? memory::desc(wdims, dt::f32, tag::any) : k->user_wei;
  auto dst = blocked ? memory::desc({n, o, oh, ow}, dt::f32, tag::any) : k->user_dst;
  dnnl::convolution_forward::primitive_desc pd;
  memory::dims strides{v[9], v[10]}, dil{v[15] - 1, v[16] - 1}, pad_l{v[11], v[12]}, pad_r{v[13], v[14]};
  if (k->has_bias) {
    pd = dnnl::convolution_forward::primitive_desc(cpu_engine(), dnnl::prop_kind::forward_inference,
        dnnl::algorithm::convolution_direct, src, wei, k->bias, dst, strides, dil, pad_l, pad_r, attr);
  } else {
    pd = dnnl::convolution_forward::primitive_desc(cpu_engine(), dnnl::prop_kind::forward_inference,
        dnnl::algorithm::convolution_direct, src, wei, dst, strides, dil, pad_l, pad_r, attr);
  }
  k->src = pd.src_desc();
  k->wei = pd.weights_desc();
  k->dst = pd.dst_desc();
  k->prim = dnnl::convolution_forward(pd);
  size_buffers(*k, pd);
  return k;
}

// v: batch m k n b_batched post
constexpr int kMatmulArgs = 6;

std::unique_ptr<Kernel> make_matmul(const int64_t* v) {
  const int64_t batch = v[0], m = v[1], kk = v[2], n = v[3], b_batch = v[4] ? batch : 1;
  auto k = std::make_unique<Kernel>();
  k->user_src = k->src = memory::desc({batch, m, kk}, dt::f32, tag::abc);
  k->user_wei = k->wei = memory::desc({b_batch, kk, n}, dt::f32, tag::abc);
  k->user_dst = k->dst = memory::desc({batch, m, n}, dt::f32, tag::abc);
  k->bias = memory::desc({1, 1, n}, dt::f32, tag::abc);
  dnnl::primitive_attr attr = attr_with(v[5], *k);
  dnnl::matmul::primitive_desc pd = k->has_bias
      ? dnnl::matmul::primitive_desc(cpu_engine(), k->src, k->wei, k->bias, k->dst, attr)
      : dnnl::matmul::primitive_desc(cpu_engine(), k->src, k->wei, k->dst, attr);
  k->prim = dnnl::matmul(pd);
  size_buffers(*k, pd);
  return k;
}

Kernel& kernel_for(const char* op, const int64_t* v, int count) {
  auto& slot = t_cache[key_of(op, v, count)];
  if (!slot) slot = op[0] == 'c' ? make_conv(v) : make_matmul(v);
  return *slot;
}

memory wrap(const memory::desc& md, void* ptr) { return memory(md, cpu_engine(), ptr); }

constexpr size_t kAlign = 64;
size_t aligned(size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }
size_t held(const Kernel& k) { return aligned(k.scratch) + aligned(k.src_buf) + aligned(k.wei_buf) + aligned(k.dst_buf); }

// One workspace per thread, shared by all its kernels: a thread runs one kernel at a time, so the
// scratchpads and reorder buffers need the largest kernel's bytes, not the sum over kernels.
thread_local std::vector<uint8_t> t_workspace;
thread_local size_t t_workspace_bytes = 0;

uint8_t* workspace(size_t bytes) {
  if (bytes > t_workspace_bytes) {
    t_workspace.assign(bytes + kAlign, 0);
    t_workspace_bytes = bytes;
  }
  const auto address = reinterpret_cast<uintptr_t>(t_workspace.data());
  return t_workspace.data() + (kAlign - address % kAlign) % kAlign;
}

// Runs `k` on user pointers, reordering into and out of the primitive's layouts where they differ.
void run(Kernel& k, void* src, void* wei, void* const* extras, void* dst) {
  auto& stream = cpu_stream();
  memory usrc = wrap(k.user_src, src), uwei = wrap(k.user_wei, wei), udst = wrap(k.user_dst, dst);
  uint8_t* region = workspace(held(k));
  auto carve = [&region](size_t bytes) {
    uint8_t* start = region;
    region += aligned(bytes);
    return start;
  };
  memory psrc = k.src_buf == 0 ? usrc : wrap(k.src, carve(k.src_buf));
  memory pwei = k.wei_buf == 0 ? uwei : wrap(k.wei, carve(k.wei_buf));
  memory pdst = k.dst_buf == 0 ? udst : wrap(k.dst, carve(k.dst_buf));
  if (k.src_buf != 0) k.to_src.execute(stream, usrc, psrc);
  if (k.wei_buf != 0) k.to_wei.execute(stream, uwei, pwei);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, psrc}, {DNNL_ARG_WEIGHTS, pwei}, {DNNL_ARG_DST, pdst}};
  int next = 0;
  if (k.has_bias) args.emplace(DNNL_ARG_BIAS, wrap(k.bias, extras[next++]));
  if (k.has_sum) {  // dst starts as the added tensor (the arena may already hold it there: then no copy)
    void* added = extras[next++];
    if (k.dst_buf != 0) {
      memory uadd = wrap(k.user_dst, added);
      k.into_dst.execute(stream, uadd, pdst);
    } else if (added != dst) {
      std::memmove(dst, added, k.user_dst.get_size());
    }
  }
  if (k.scratch != 0) args.emplace(DNNL_ARG_SCRATCHPAD, wrap(k.scratch_md, carve(k.scratch)));
  k.prim.execute(stream, args);
  if (k.dst_buf != 0) k.from_dst.execute(stream, pdst, udst);
  stream.wait();
}

int32_t guarded(const char* op, const int64_t* v, int count, void* a, void* b, void* const* extras, void* out) {
  try {
    Kernel& k = kernel_for(op, v, count);
    with_threads([&] { run(k, a, b, extras, out); });
    return 0;
  } catch (const dnnl::error& e) {
    std::fprintf(stderr, "graphopt oneDNN %s: %s (status %d)\n", op, e.what(), static_cast<int>(e.status));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "graphopt oneDNN %s: %s\n", op, e.what());
  }
  return -1;
}


int32_t describe(const char* op, const int64_t* v, int count, char* out, int64_t cap) {
  try {
    Kernel& k = kernel_for(op, v, count);
    std::snprintf(out, static_cast<size_t>(cap), "%s;%zu;%zu;%zu", k.impl.c_str(), aligned(k.scratch),
                  aligned(k.src_buf) + aligned(k.dst_buf), aligned(k.wei_buf));
    return 0;
  } catch (const std::exception& e) {
    std::snprintf(out, static_cast<size_t>(cap), "error;%s", e.what());
  }
  return -1;
}

}  // namespace

extern "C" {

// The extern calls of graphopt's PrimFuncs: src, weights, dst, up to three epilogue operands
// (unused ones may be any pointer), the shape, the epilogue code (see kBias) and, for convolution,
// the layout mode (0 plain, 1 blocked with per-call reorders). 0 on success, -1 (message on stderr).
int32_t graphopt_dnnl_conv2d_f32(void* src, void* wei, void* dst, void* e0, void* e1, void* e2, int64_t n, int64_t c,
                                 int64_t h, int64_t w, int64_t o, int64_t kh, int64_t kw, int64_t oh, int64_t ow,
                                 int64_t sh, int64_t sw, int64_t pt, int64_t pl, int64_t pb, int64_t pr, int64_t dh,
                                 int64_t dw, int64_t groups, int64_t post, int64_t mode) {
  const int64_t v[kConvArgs] = {n, c, h, w, o, kh, kw, oh, ow, sh, sw, pt, pl, pb, pr, dh, dw, groups, post, mode};
  void* const extras[kMaxExtras] = {e0, e1, e2};
  return guarded("conv2d", v, kConvArgs, src, wei, extras, dst);
}

int32_t graphopt_dnnl_matmul_f32(void* a, void* b, void* c, void* e0, void* e1, void* e2, int64_t batch, int64_t m,
                                 int64_t k, int64_t n, int64_t b_batched, int64_t post) {
  const int64_t v[kMatmulArgs] = {batch, m, k, n, b_batched, post};
  void* const extras[kMaxExtras] = {e0, e1, e2};
  return guarded("matmul", v, kMatmulArgs, a, b, extras, c);
}

// "impl;scratch bytes;activation reorder bytes;weight reorder bytes" of the primitive for these arguments.
int32_t graphopt_dnnl_describe(const char* op, const int64_t* v, int64_t count, char* out, int64_t cap) {
  const int expected = op[0] == 'c' ? kConvArgs : kMatmulArgs;
  if (count != expected) return -2;
  return describe(op, v, expected, out, cap);
}

void graphopt_dnnl_set_threads(int32_t threads) { g_threads.store(threads); }

// Bytes this thread holds beside the arena: its workspace (scratchpads and reorder buffers).
int64_t graphopt_dnnl_held_bytes() { return static_cast<int64_t>(t_workspace_bytes); }

}  // extern "C"
