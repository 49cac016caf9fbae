// graphopt swap engine for CUDA: one copy stream per direction, events, pinned
// host memory.
//
// Design: the planned program calls, in program order (see
// graphopt/train/swap_rewrite.py):
//   swap_out(slot, dev, n)   after the last kernel that uses the tensor:
//                            the D2H stream waits for the compute stream (the
//                            kernel has written it), then copies into a pinned
//                            host buffer and records out_done[slot];
//   swap_wait_out(slot)      before the first kernel that reuses the range:
//                            the compute stream waits for out_done[slot];
//   swap_in(slot, dev, n)    where the range is taken again: the H2D stream
//                            waits for out_done[slot] (data is on host) and for
//                            the compute stream (earlier users of the new range
//                            are done), copies, records in_done[slot];
//   swap_wait_in(slot)      before the next use: compute waits for in_done[slot].
// Waits are stream waits, never host syncs, so copies overlap compute; each
// direction is one stream, so copies of one direction serialize in issue
// order, which is the model the planner and the validator assume.
// A C ABI keeps it loadable by ctypes from graphopt.runtime.swap.

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdio>
#include <vector>

namespace {

struct Slot {
  void* host = nullptr;  // pinned, reused across steps
  size_t capacity = 0;
  cudaEvent_t out_done = nullptr;
  cudaEvent_t in_done = nullptr;
};

struct Engine {
  cudaStream_t compute = nullptr;  // the stream TVM launches kernels on (0: legacy default)
  cudaStream_t d2h = nullptr;
  cudaStream_t h2d = nullptr;
  cudaEvent_t compute_mark = nullptr;
  std::vector<Slot> slots;
  char error[256] = {0};
};

Engine engine;

int fail(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return 0;
  std::snprintf(engine.error, sizeof(engine.error), "%s: %s", what, cudaGetErrorString(err));
  return -1;
}

#define CHECK(call) \
  do { if (fail((call), #call)) return -1; } while (0)

int ensure_slot(int slot, size_t nbytes) {
  if (slot < 0) return fail(cudaErrorInvalidValue, "negative slot");
  if (static_cast<size_t>(slot) >= engine.slots.size()) engine.slots.resize(slot + 1);
  Slot& s = engine.slots[slot];
  if (s.out_done == nullptr) {
    CHECK(cudaEventCreateWithFlags(&s.out_done, cudaEventDisableTiming));
    CHECK(cudaEventCreateWithFlags(&s.in_done, cudaEventDisableTiming));
  }
  if (s.capacity < nbytes) {
    if (s.host != nullptr) CHECK(cudaFreeHost(s.host));
    CHECK(cudaHostAlloc(&s.host, nbytes, cudaHostAllocDefault));
    s.capacity = nbytes;
  }
  return 0;
}

// Makes `stream` wait for everything issued so far on the compute stream.
int after_compute(cudaStream_t stream) {
  CHECK(cudaEventRecord(engine.compute_mark, engine.compute));
  CHECK(cudaStreamWaitEvent(stream, engine.compute_mark, 0));
  return 0;
}

}  // namespace

extern "C" {

int graphopt_swap_init(int device, void* compute_stream) {
  CHECK(cudaSetDevice(device));
  engine.compute = static_cast<cudaStream_t>(compute_stream);
  if (engine.d2h == nullptr) {
    CHECK(cudaStreamCreateWithFlags(&engine.d2h, cudaStreamNonBlocking));
    CHECK(cudaStreamCreateWithFlags(&engine.h2d, cudaStreamNonBlocking));
    CHECK(cudaEventCreateWithFlags(&engine.compute_mark, cudaEventDisableTiming));
  }
  return 0;
}

int graphopt_swap_out(int slot, const void* device_ptr, size_t nbytes) {
  if (ensure_slot(slot, nbytes)) return -1;
  Slot& s = engine.slots[slot];
  if (after_compute(engine.d2h)) return -1;
  CHECK(cudaMemcpyAsync(s.host, device_ptr, nbytes, cudaMemcpyDeviceToHost, engine.d2h));
  CHECK(cudaEventRecord(s.out_done, engine.d2h));
  return 0;
}

int graphopt_swap_wait_out(int slot) {
  if (ensure_slot(slot, 0)) return -1;
  CHECK(cudaStreamWaitEvent(engine.compute, engine.slots[slot].out_done, 0));
  return 0;
}

int graphopt_swap_in(int slot, void* device_ptr, size_t nbytes) {
  if (ensure_slot(slot, nbytes)) return -1;
  Slot& s = engine.slots[slot];
  CHECK(cudaStreamWaitEvent(engine.h2d, s.out_done, 0));
  if (after_compute(engine.h2d)) return -1;
  CHECK(cudaMemcpyAsync(device_ptr, s.host, nbytes, cudaMemcpyHostToDevice, engine.h2d));
  CHECK(cudaEventRecord(s.in_done, engine.h2d));
  return 0;
}

int graphopt_swap_wait_in(int slot) {
  if (ensure_slot(slot, 0)) return -1;
  CHECK(cudaStreamWaitEvent(engine.compute, engine.slots[slot].in_done, 0));
  return 0;
}

int graphopt_swap_shutdown(void) {
  for (Slot& s : engine.slots) {
    if (s.host != nullptr) CHECK(cudaFreeHost(s.host));
    if (s.out_done != nullptr) CHECK(cudaEventDestroy(s.out_done));
    if (s.in_done != nullptr) CHECK(cudaEventDestroy(s.in_done));
  }
  engine.slots.clear();
  if (engine.d2h != nullptr) {
    CHECK(cudaStreamDestroy(engine.d2h));
    CHECK(cudaStreamDestroy(engine.h2d));
    CHECK(cudaEventDestroy(engine.compute_mark));
    engine.d2h = engine.h2d = nullptr;
  }
  return 0;
}

const char* graphopt_swap_last_error(void) { return engine.error; }

}  // extern "C"
