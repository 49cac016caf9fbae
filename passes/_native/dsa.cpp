// Exact search for the decision problem "do all buffers fit under height H?"
// (offline dynamic storage allocation), the inner loop of passes/dsa_search.py.
//
// Design (the same algorithm as the pure-Python twin passes/dsa_python.py;
// why each rule keeps the search complete: passes/dsa_search.py's docstring):
// - Canonical solutions: every solution can be pushed down until each buffer
//   rests on 0 or on a buffer it overlaps in time. Taking the buffers of such a
//   solution in (offset, rank) order, each one's offset is its "floor": the
//   aligned max top of the already placed buffers it overlaps. So the search
//   decides only WHICH buffer comes next; its offset follows.
// - Offsets never decrease along a branch (monotonic floor): an unplaced
//   buffer lies at >= the last offset placed.
// - Dominance: if an unplaced buffer u fits entirely below the next offset
//   (floor(u) + size(u) <= o), a solution with u lowered to its floor is no
//   worse, and it is found in another branch; so o < min floor(u)+size(u).
// - Symmetry: buffers placed at the same offset go in rank order.
// - Sections (maximal cliques of the interval graph): the unplaced bytes of
//   a section stack above max(its floor, last offset), its floor raised to the
//   lowest floor of its unplaced members; past H, the branch is dead.
// - Decomposition: a section boundary no unplaced buffer crosses splits the
//   rest into pieces searched one after the other, each from offset 0.
// The search is a DFS with an undo trail; it stops at a node or time budget.
// Built as a CPython extension module only so that pip compiles it; Python
// reaches the one C function with ctypes (see passes/native.py).

#include <Python.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

namespace {

using i64 = int64_t;

struct Search {
  int n = 0, num_sections = 0;
  i64 cap = 0;
  std::vector<i64> size, align, rank;
  std::vector<int> sec_lo, sec_hi;        // sections [sec_lo, sec_hi) of each buffer
  std::vector<std::vector<int>> overlap;  // buffers overlapping in time
  std::vector<i64> floor_raw;             // aligned max top of placed overlapping buffers
  std::vector<i64> sec_floor, sec_left;   // per section: top placed, bytes unplaced
  std::vector<i64> offset;                // -1 while unplaced
  std::vector<std::pair<int, i64>> trail; // (buffer, old floor_raw)
  std::vector<std::vector<int>> members;  // buffers of each section
  std::vector<std::pair<int, i64>> sec_trail;  // (section, old sec_floor)
  std::vector<int> stamp;                 // per section: last node that touched it
  std::vector<int> touched;
  std::vector<int> placed;                // placement order, for undo
  std::vector<int> cuts;                  // unplaced buffers crossing boundary k|k+1
  i64 nodes = 0, node_limit = 0;
  double deadline = 0;
  bool aborted = false;
  int epoch = 0;

  static double now() {
    using clock = std::chrono::steady_clock;
    return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
  }
  i64 floor_of(int b) const { return floor_raw[b]; }  // kept aligned
  i64 align_up(int b, i64 x) const {
    i64 a = align[b];
    return a == 1 ? x : (x + a - 1) / a * a;
  }

  // Sections must hold their unplaced bytes above max(floor, last).
  bool sections_ok(int lo, int hi, i64 last) const {
    for (int s = lo; s < hi; ++s) {
      if (sec_left[s] > 0 && std::max(sec_floor[s], last) + sec_left[s] > cap) return false;
    }
    return true;
  }

  // Raises section floors: b's sections get its top; every section of a
  // buffer whose floor rose gets the lowest floor of its unplaced members
  // (nothing unplaced can go lower there). All changes go on the trails.
  bool place(int b, i64 o) {
    offset[b] = o;
    placed.push_back(b);
    bool split = false;
    for (int k = sec_lo[b]; k + 1 < sec_hi[b]; ++k) split |= --cuts[k] == 0;
    i64 top = o + size[b];
    ++epoch;
    touched.clear();
    for (int s = sec_lo[b]; s < sec_hi[b]; ++s) {
      sec_trail.emplace_back(s, sec_floor[s]);
      sec_floor[s] = top;
      sec_left[s] -= size[b];
      touch(s);
    }
    for (int u : overlap[b]) {
      if (offset[u] < 0 && floor_raw[u] < top) {
        trail.emplace_back(u, floor_raw[u]);
        floor_raw[u] = align_up(u, top);
        for (int s = sec_lo[u]; s < sec_hi[u]; ++s) touch(s);
      }
    }
    for (int s : touched) {
      i64 low = INT64_MAX, floor = sec_floor[s];
      for (int u : members[s]) {
        if (offset[u] >= 0) continue;
        low = std::min(low, floor_of(u));
        if (low <= floor) break;
      }
      if (low != INT64_MAX && low > floor) {
        sec_trail.emplace_back(s, sec_floor[s]);
        sec_floor[s] = low;
      }
    }
    return split;
  }
  void touch(int s) {
    if (stamp[s] != epoch) { stamp[s] = epoch; touched.push_back(s); }
  }

  // Candidates: unplaced b at floor(b) >= last, fitting under cap and below
  // every other unplaced buffer's floor+size (dominance); by (offset, rank).
  void candidates(const std::vector<int>& unplaced, i64 last, std::vector<std::pair<i64, int>>& out) const {
    i64 best = INT64_MAX, second = INT64_MAX;
    int arg = -1;
    for (int u : unplaced) {
      i64 t = floor_of(u) + size[u];
      if (t < best) { second = best; best = t; arg = u; }
      else if (t < second) second = t;
    }
    for (int b : unplaced) {
      i64 o = floor_of(b);
      i64 bound = b == arg ? second : best;
      if (o >= last && o < bound && o + size[b] <= cap) out.emplace_back(o, b);
    }
    std::sort(out.begin(), out.end(), [this](const auto& x, const auto& y) {
      return x.first != y.first ? x.first < y.first : rank[x.second] < rank[y.second];
    });
  }

  // Sections are the maximal cliques of the interval graph: the live set just
  // before an end that follows a start. Every other cross-section is a subset
  // of one of them, so its check is implied; fewer sections, same pruning.
  // A buffer belongs to a contiguous range of them, [sec_lo, sec_hi).
  void build_sections(const i64* starts, const i64* ends) {
    std::vector<std::pair<i64, int>> events;  // (time, 2b+1 start | 2b end): ends first at a tie
    for (int b = 0; b < n; ++b) {
      events.emplace_back(starts[b], 2 * b + 1);
      events.emplace_back(ends[b], 2 * b);
    }
    std::sort(events.begin(), events.end(), [](const auto& x, const auto& y) {
      return x.first != y.first ? x.first < y.first : (x.second & 1) < (y.second & 1);
    });
    sec_lo.assign(n, 0);
    sec_hi.assign(n, 0);
    bool grew = false;
    num_sections = 0;
    for (auto [t, code] : events) {
      int b = code >> 1;
      if (code & 1) {
        sec_lo[b] = num_sections;
        grew = true;
      } else {
        if (grew) ++num_sections;
        grew = false;
        sec_hi[b] = num_sections;
      }
    }
    sec_floor.assign(num_sections, 0);
    sec_left.assign(num_sections, 0);
    members.assign(num_sections, {});
    stamp.assign(num_sections, -1);
    for (int b = 0; b < n; ++b) {
      for (int k = sec_lo[b]; k < sec_hi[b]; ++k) {
        sec_left[k] += size[b];
        members[k].push_back(b);
      }
    }
  }

  struct Mark { size_t placed, trail, sec; };
  Mark mark() const { return {placed.size(), trail.size(), sec_trail.size()}; }

  // Undoes every placement and floor change made since `m`.
  void undo_to(const Mark& m) {
    while (placed.size() > m.placed) {
      int b = placed.back();
      placed.pop_back();
      for (int s = sec_lo[b]; s < sec_hi[b]; ++s) sec_left[s] += size[b];
      for (int k = sec_lo[b]; k + 1 < sec_hi[b]; ++k) ++cuts[k];
      offset[b] = -1;
    }
    while (sec_trail.size() > m.sec) {
      sec_floor[sec_trail.back().first] = sec_trail.back().second;
      sec_trail.pop_back();
    }
    while (trail.size() > m.trail) {
      floor_raw[trail.back().first] = trail.back().second;
      trail.pop_back();
    }
  }

  // Solves the buffers `bufs` living in sections [lo, hi), first splitting
  // them at every boundary no unplaced buffer crosses: the pieces share no
  // time, so each is searched alone and a failed piece fails them all.
  bool solve_range(const std::vector<int>& bufs, int lo, int hi) {
    std::vector<int> piece_of(hi - lo);
    int pieces = 0;
    for (int k = lo; k < hi; ++k) {
      piece_of[k - lo] = pieces;
      if (k + 1 < hi && cuts[k] == 0) ++pieces;
    }
    std::vector<std::vector<int>> members_of(pieces + 1);
    for (int b : bufs) members_of[piece_of[sec_lo[b] - lo]].push_back(b);
    int piece_lo = lo;
    for (int k = lo; k < hi; ++k) {
      if (k + 1 < hi && cuts[k] > 0) continue;
      const std::vector<int>& piece = members_of[piece_of[k - lo]];
      if (!piece.empty() && !dfs(piece, piece_lo, k + 1, 0, -1)) return false;
      piece_lo = k + 1;
    }
    return true;
  }

  bool dfs(const std::vector<int>& unplaced, int lo, int hi, i64 last, int last_buf) {
    if (unplaced.empty()) return true;
    if ((++nodes & 255) == 0 && (now() > deadline || (node_limit > 0 && nodes > node_limit))) aborted = true;
    if (aborted) return false;
    std::vector<std::pair<i64, int>> cands;
    candidates(unplaced, last, cands);
    std::vector<int> rest;
    for (auto [o, b] : cands) {
      if (o == last && last_buf >= 0 && rank[b] < rank[last_buf]) continue;  // symmetry
      Mark m = mark();
      bool split = place(b, o);
      if (sections_ok(lo, hi, o)) {
        rest.clear();
        for (int u : unplaced) if (u != b) rest.push_back(u);
        if (split ? solve_range(rest, lo, hi) : dfs(rest, lo, hi, o, b)) return true;
      }
      undo_to(m);
      if (aborted) return false;
    }
    return false;
  }
};

}  // namespace

extern "C" {

// Returns 1 (fits; offsets written), 0 (proved not to fit), -1 (budget spent).
// stats[0] = nodes explored.
int graphopt_dsa_fits(int n, const i64* starts, const i64* ends, const i64* sizes, const i64* aligns,
                      const i64* ranks, i64 cap, double seconds, i64 node_limit, i64* offsets, i64* stats) {
  Search s;
  s.n = n;
  s.cap = cap;
  s.size.assign(sizes, sizes + n);
  s.align.assign(aligns, aligns + n);
  s.rank.assign(ranks, ranks + n);
  s.build_sections(starts, ends);
  s.overlap.resize(n);
  std::vector<int> by_start(n);
  for (int b = 0; b < n; ++b) by_start[b] = b;
  std::sort(by_start.begin(), by_start.end(), [&](int x, int y) { return starts[x] < starts[y]; });
  for (int i = 0; i < n; ++i) {
    for (int j = i + 1; j < n && starts[by_start[j]] < ends[by_start[i]]; ++j) {
      s.overlap[by_start[i]].push_back(by_start[j]);
      s.overlap[by_start[j]].push_back(by_start[i]);
    }
  }
  s.floor_raw.assign(n, 0);
  s.offset.assign(n, -1);
  std::vector<int> all(n);
  for (int b = 0; b < n; ++b) all[b] = b;
  std::sort(all.begin(), all.end(), [&](int x, int y) { return s.rank[x] < s.rank[y]; });
  s.cuts.assign(std::max(0, s.num_sections), 0);
  for (int b = 0; b < n; ++b)
    for (int k = s.sec_lo[b]; k + 1 < s.sec_hi[b]; ++k) ++s.cuts[k];
  s.deadline = Search::now() + seconds;
  s.node_limit = node_limit;
  bool ok = s.sections_ok(0, s.num_sections, 0) && s.solve_range(all, 0, s.num_sections);
  stats[0] = s.nodes;
  if (ok) {
    for (int b = 0; b < n; ++b) offsets[b] = s.offset[b];
    return 1;
  }
  return s.aborted ? -1 : 0;
}

}  // extern "C"

static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_dsa_native",
                                        "Native DSA search; called through ctypes.", -1, nullptr};

PyMODINIT_FUNC PyInit__dsa_native(void) { return PyModule_Create(&module_def); }
