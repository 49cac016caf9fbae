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
//
// The compute stream is whatever TVM launches kernels on: the caller
// (runtime/cuda_swap.py) passes TVM-FFI's current environment stream for the
// device (NULL = the legacy default stream) before each call.
//
// Timing (off by default, for benchmarks/gpu_check.py): each copy gets events
// at its start and end on its copy stream, and each wait gets an event on the
// compute stream recorded just before the compute stream starts waiting. After
// a device sync, graphopt_swap_timeline returns, per copy, milliseconds since
// the step's base event: start, end, and when compute reached the wait. A copy
// that ends before compute reaches its wait was hidden behind compute.
//
// A C ABI keeps it loadable by ctypes. Every function returns 0 or -1; the
// message of the last failure is graphopt_swap_last_error().

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

struct Record {  // one timed copy (timing mode only)
  int slot = 0;
  int direction = 0;  // 0: device->host, 1: host->device
  size_t nbytes = 0;
  bool waited = false;
  cudaEvent_t start = nullptr, end = nullptr, wait = nullptr;
};

struct Engine {
  int device = 0;
  cudaStream_t compute = nullptr;  // the stream TVM launches kernels on (nullptr: legacy default)
  cudaStream_t d2h = nullptr;
  cudaStream_t h2d = nullptr;
  cudaEvent_t compute_mark = nullptr;
  std::vector<Slot> slots;
  bool timing = false;
  cudaEvent_t base = nullptr;
  std::vector<Record> records;  // grows to the largest step seen, events reused
  size_t used = 0;              // records used in the current step
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
    s.host = nullptr;
    s.capacity = 0;
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

// The record for the next timed copy, its events created on first use.
Record* next_record(int slot, int direction, size_t nbytes) {
  if (engine.used == engine.records.size()) {
    Record r;
    if (fail(cudaEventCreate(&r.start), "cudaEventCreate") || fail(cudaEventCreate(&r.end), "cudaEventCreate") ||
        fail(cudaEventCreate(&r.wait), "cudaEventCreate"))
      return nullptr;
    engine.records.push_back(r);
  }
  Record* r = &engine.records[engine.used++];
  r->slot = slot;
  r->direction = direction;
  r->nbytes = nbytes;
  r->waited = false;
  return r;
}

int copy(int slot, int direction, void* dst, const void* src, size_t nbytes, cudaStream_t stream,
         cudaEvent_t done) {
  Record* r = nullptr;
  if (engine.timing) {
    r = next_record(slot, direction, nbytes);
    if (r == nullptr) return -1;
    CHECK(cudaEventRecord(r->start, stream));
  }
  cudaMemcpyKind kind = direction == 0 ? cudaMemcpyDeviceToHost : cudaMemcpyHostToDevice;
  CHECK(cudaMemcpyAsync(dst, src, nbytes, kind, stream));
  if (r != nullptr) CHECK(cudaEventRecord(r->end, stream));
  CHECK(cudaEventRecord(done, stream));
  return 0;
}

// The compute stream waits for `done`; in timing mode, marks when it got there.
int compute_waits(int slot, int direction, cudaEvent_t done) {
  if (engine.timing) {
    for (size_t i = engine.used; i-- > 0;) {
      Record& r = engine.records[i];
      if (r.slot == slot && r.direction == direction && !r.waited) {
        CHECK(cudaEventRecord(r.wait, engine.compute));
        r.waited = true;
        break;
      }
    }
  }
  CHECK(cudaStreamWaitEvent(engine.compute, done, 0));
  return 0;
}

}  // namespace

extern "C" {

int graphopt_swap_init(int device, void* compute_stream) {
  CHECK(cudaSetDevice(device));
  engine.device = device;
  engine.compute = static_cast<cudaStream_t>(compute_stream);
  if (engine.d2h == nullptr) {
    CHECK(cudaStreamCreateWithFlags(&engine.d2h, cudaStreamNonBlocking));
    CHECK(cudaStreamCreateWithFlags(&engine.h2d, cudaStreamNonBlocking));
    CHECK(cudaEventCreateWithFlags(&engine.compute_mark, cudaEventDisableTiming));
    CHECK(cudaEventCreate(&engine.base));
  }
  return 0;
}

// TVM's current stream may change between runs (tvm_ffi.use_raw_stream).
int graphopt_swap_set_compute_stream(void* compute_stream) {
  engine.compute = static_cast<cudaStream_t>(compute_stream);
  return 0;
}

int graphopt_swap_out(int slot, const void* device_ptr, size_t nbytes) {
  if (ensure_slot(slot, nbytes)) return -1;
  Slot& s = engine.slots[slot];
  if (after_compute(engine.d2h)) return -1;
  return copy(slot, 0, s.host, device_ptr, nbytes, engine.d2h, s.out_done);
}

int graphopt_swap_wait_out(int slot) {
  if (ensure_slot(slot, 0)) return -1;
  return compute_waits(slot, 0, engine.slots[slot].out_done);
}

int graphopt_swap_in(int slot, void* device_ptr, size_t nbytes) {
  if (ensure_slot(slot, nbytes)) return -1;
  Slot& s = engine.slots[slot];
  CHECK(cudaStreamWaitEvent(engine.h2d, s.out_done, 0));
  if (after_compute(engine.h2d)) return -1;
  return copy(slot, 1, device_ptr, s.host, nbytes, engine.h2d, s.in_done);
}

int graphopt_swap_wait_in(int slot) {
  if (ensure_slot(slot, 0)) return -1;
  return compute_waits(slot, 1, engine.slots[slot].in_done);
}

// Timing: on/off, then begin_step before each timed run (records the base on compute).
int graphopt_swap_set_timing(int enabled) {
  engine.timing = enabled != 0;
  engine.used = 0;
  return 0;
}

int graphopt_swap_begin_step(void) {
  engine.used = 0;
  if (engine.base == nullptr) return fail(cudaErrorNotReady, "graphopt_swap_init was not called");
  CHECK(cudaEventRecord(engine.base, engine.compute));
  return 0;
}

// Writes up to `max_rows` rows of 6 doubles: slot, direction, bytes, start_ms,
// end_ms, wait_ms (-1 if the program never waited); returns the row count or -1.
// Call after the step's work is complete (device sync).
int graphopt_swap_timeline(double* rows, int max_rows) {
  int n = 0;
  for (size_t i = 0; i < engine.used && n < max_rows; ++i, ++n) {
    const Record& r = engine.records[i];
    float start = 0, end = 0, wait = -1;
    CHECK(cudaEventElapsedTime(&start, engine.base, r.start));
    CHECK(cudaEventElapsedTime(&end, engine.base, r.end));
    if (r.waited) CHECK(cudaEventElapsedTime(&wait, engine.base, r.wait));
    double* row = rows + 6 * n;
    row[0] = r.slot;
    row[1] = r.direction;
    row[2] = static_cast<double>(r.nbytes);
    row[3] = start;
    row[4] = end;
    row[5] = wait;
  }
  return n;
}

// Pinned bytes currently held (host memory, not device memory).
size_t graphopt_swap_pinned_bytes(void) {
  size_t total = 0;
  for (const Slot& s : engine.slots) total += s.capacity;
  return total;
}

int graphopt_swap_shutdown(void) {
  for (Slot& s : engine.slots) {
    if (s.host != nullptr) CHECK(cudaFreeHost(s.host));
    if (s.out_done != nullptr) CHECK(cudaEventDestroy(s.out_done));
    if (s.in_done != nullptr) CHECK(cudaEventDestroy(s.in_done));
  }
  engine.slots.clear();
  for (Record& r : engine.records) {
    CHECK(cudaEventDestroy(r.start));
    CHECK(cudaEventDestroy(r.end));
    CHECK(cudaEventDestroy(r.wait));
  }
  engine.records.clear();
  engine.used = 0;
  if (engine.d2h != nullptr) {
    CHECK(cudaStreamDestroy(engine.d2h));
    CHECK(cudaStreamDestroy(engine.h2d));
    CHECK(cudaEventDestroy(engine.compute_mark));
    CHECK(cudaEventDestroy(engine.base));
    engine.d2h = engine.h2d = nullptr;
    engine.compute_mark = engine.base = nullptr;
  }
  return 0;
}

const char* graphopt_swap_last_error(void) { return engine.error; }

}  // extern "C"
