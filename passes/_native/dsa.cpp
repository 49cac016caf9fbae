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
//   rest into pieces searched one after the other, each from offset 0, each
//   ranked afresh by the preorder keys (T on the bytes still unplaced).
// - Hatless pruning: when a candidate with nothing unplaced overlapping it
//   fails, so does the node (its offset is final and precedes the rest).
// Speed-ups that leave the explored nodes unchanged (the twin has none):
// section floors = lowest floor of the unplaced members, with a count of the
// members at it, rescanned only when that count falls to 0 (and trailed once
// per placement); the post-placement check looks at the changed sections
// only; candidates that cannot pass it (offset + bytes left of some section
// > H) are rejected before placing, decided from the fullest section alone
// unless b is the only one left in it.
// The search is a DFS with an undo trail; it stops at a node or time budget.
// Fixed buffers (graphopt_dsa_fits_around, for passes/window_search.py): each
// searched buffer's floor is also lifted past the address ranges of the fixed
// buffers it overlaps in time (lowest gap that fits). The search stays sound
// (every answer is valid) but not complete: a buffer could also sit in a
// higher gap, so a failure there proves nothing (the caller knows). There the
// section floors are not updated (stale_floors): 10x faster on training traces.
// Built as a CPython extension module only so that pip compiles it; Python
// reaches the two C functions with ctypes (see passes/native.py).

#include <Python.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

using i64 = int64_t;

struct Cand {
  i64 offset, rank;
  int buf;
  bool operator<(const Cand& o) const { return offset != o.offset ? offset < o.offset : rank < o.rank; }
};

struct Search {
  int n = 0, num_sections = 0;
  i64 cap = 0;
  std::vector<i64> size, align, rank, life;
  std::vector<char> keys;                 // preorder, e.g. "TWA"; see rerank
  std::vector<int> sec_lo, sec_hi;        // sections [sec_lo, sec_hi) of each buffer
  std::vector<std::vector<int>> overlap;  // buffers overlapping in time
  std::vector<i64> floor_raw;             // aligned max top of placed overlapping buffers
  // Per buffer: address ranges [lo, hi) of the fixed buffers overlapping it in
  // time, merged and sorted; empty without fixed buffers.
  std::vector<std::vector<std::pair<i64, i64>>> blocked;
  // Stale section floors (around fixed buffers): sec_min keeps its first
  // value, still a lower bound of the members' floors (floors only rise), so
  // the checks stay sound, only weaker; it saves the rescans that cost most
  // where long-lived buffers span thousands of sections.
  bool stale_floors = false;
  // Per section: the lowest floor of its unplaced members (INT64_MAX if none)
  // and how many unplaced members sit at it, kept incrementally; and its
  // unplaced bytes.
  std::vector<i64> sec_min, sec_left;
  std::vector<int> sec_cnt;
  std::vector<i64> offset;                // -1 while unplaced
  std::vector<int> free_deg;              // unplaced buffers overlapping each buffer
  std::vector<std::pair<int, i64>> trail; // (buffer, old floor_raw)
  std::vector<std::vector<int>> members;  // buffers of each section
  struct SecOld { int sec; i64 min; int cnt; };
  std::vector<SecOld> sec_trail;          // section states before a change
  std::vector<int> stamp;                 // per section: last placement that trailed it
  std::vector<int> touched;
  std::vector<int> placed;                // placement order, for undo
  std::vector<int> cuts;                  // unplaced buffers crossing boundary k|k+1
  std::vector<std::vector<Cand>> cand_pool;  // per depth, so no node allocates
  std::vector<std::vector<int>> rest_pool;
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
  // Lowest aligned offset >= x where b clears every fixed range (x if none).
  i64 lift(int b, i64 x) const {
    x = align_up(b, x);
    if (blocked.empty()) return x;
    for (auto [lo, hi] : blocked[b]) {
      if (hi <= x) continue;
      if (x + size[b] <= lo) break;
      x = align_up(b, hi);
    }
    return x;
  }

  // Full check (the root): every section holds its unplaced bytes above
  // max(lowest floor of its unplaced members, last).
  bool sections_ok(int lo, int hi, i64 last) const {
    for (int s = lo; s < hi; ++s) {
      if (sec_left[s] > 0 && std::max(sec_min[s], last) + sec_left[s] > cap) return false;
    }
    return true;
  }

  // The same check after place(b, last), given that it held before for
  // [lo, hi) at a last offset <= `last`: only b's sections and the touched
  // ones changed their floor or bytes; `last` rose for all of them.
  bool sections_ok_after(int b, int lo, int hi, i64 last) const {
    i64 most = 0;
    for (int s = lo; s < hi; ++s) most = std::max(most, sec_left[s]);
    if (last + most > cap) return false;
    for (int s = sec_lo[b]; s < sec_hi[b]; ++s)
      if (sec_left[s] > 0 && sec_min[s] + sec_left[s] > cap) return false;
    for (int s : touched)
      if (sec_left[s] > 0 && sec_min[s] + sec_left[s] > cap) return false;
    return true;
  }

  // Whether placing b at `last` leaves every section of [lo, hi) able to
  // hold its unplaced bytes above `last` (b's sections: above b's top, as
  // every other unplaced member overlaps b). A cheap necessary condition of
  // sections_ok_after, so a candidate that fails it needs no placing.
  // `most` = max bytes left over [lo, hi), first reached at section `arg`:
  // when `arg` is not a section b alone is left in, it decides at once.
  bool precheck(int b, int lo, int hi, i64 last, i64 most, int arg) const {
    bool own = arg >= sec_lo[b] && arg < sec_hi[b];
    if (!own || most > size[b]) return last + most <= cap;
    for (int s = lo; s < hi; ++s) {
      i64 l = sec_left[s];
      if (s >= sec_lo[b] && s < sec_hi[b] && l - size[b] <= 0) continue;
      if (last + l > cap) return false;
    }
    return true;
  }

  // Places b at o (its floor) and raises the floors of the unplaced buffers
  // it overlaps. A section's lowest member floor can only have changed where
  // the buffer that left or rose held it; only those are rescanned. All
  // changes go on the trails. `hatless`: nothing unplaced overlaps b.
  bool place(int b, i64 o, bool& hatless) {
    offset[b] = o;
    placed.push_back(b);
    hatless = true;
    bool split = false;
    for (int k = sec_lo[b]; k + 1 < sec_hi[b]; ++k) split |= --cuts[k] == 0;
    i64 top = o + size[b];
    ++epoch;
    touched.clear();
    for (int s = sec_lo[b]; s < sec_hi[b]; ++s) {
      sec_left[s] -= size[b];
      if (!stale_floors && sec_min[s] == o) leave_min(s);
    }
    for (int u : overlap[b]) {
      if (offset[u] >= 0) continue;
      hatless = false;
      --free_deg[u];
      i64 old = floor_raw[u];
      if (old < top) {
        trail.emplace_back(u, old);
        floor_raw[u] = lift(u, top);
        if (stale_floors) continue;
        for (int s = sec_lo[u]; s < sec_hi[u]; ++s)
          if (sec_min[s] == old) leave_min(s);
      }
    }
    for (int s : touched) rescan(s);
    return split;
  }
  // One unplaced member of s left the lowest floor (placed, or lifted): only
  // when none is left there does the lowest floor change (rescan after the
  // placement). The old state goes on the trail first.
  void leave_min(int s) {
    save(s);
    if (--sec_cnt[s] == 0) touched.push_back(s);
  }
  // Trails section s's state once per placement (undo returns to a placement's start).
  void save(int s) {
    if (stamp[s] != epoch) {
      stamp[s] = epoch;
      sec_trail.push_back({s, sec_min[s], sec_cnt[s]});
    }
  }
  void rescan(int s) {
    i64 low = INT64_MAX;
    int cnt = 0;
    for (int u : members[s]) {
      if (offset[u] >= 0) continue;
      if (floor_raw[u] < low) low = floor_raw[u], cnt = 0;
      cnt += floor_raw[u] == low;
    }
    save(s);
    sec_min[s] = low;
    sec_cnt[s] = cnt;
  }

  static bool later(const Cand& x, const Cand& y) { return y < x; }

  // Candidates: unplaced b at floor(b) >= last, fitting under cap and below
  // every other unplaced buffer's floor+size (dominance); a heap popped by (offset, rank).
  void candidates(const std::vector<int>& unplaced, i64 last, std::vector<Cand>& out) const {
    out.clear();
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
      if (o >= last && o < bound && o + size[b] <= cap) out.push_back({o, rank[b], b});
    }
    std::make_heap(out.begin(), out.end(), later);  // popped in order: a dive takes only the first
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
    sec_min.assign(num_sections, 0);
    sec_cnt.assign(num_sections, 0);
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
      for (int u : overlap[b]) if (offset[u] < 0) ++free_deg[u];
    }
    while (sec_trail.size() > m.sec) {
      const SecOld& old = sec_trail.back();
      sec_min[old.sec] = old.min;
      sec_cnt[old.sec] = old.cnt;
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
  // Ranks the buffers of a piece by the preorder keys (each descending, then
  // by index): T = most unplaced bytes in a section the buffer spans (so it
  // changes as buffers are placed), W = sections spanned, A = size x
  // lifetime, Z = size, L = lifetime.
  i64 feature(char k, int b) const {
    switch (k) {
      case 'T': {
        i64 t = 0;
        for (int s = sec_lo[b]; s < sec_hi[b]; ++s) t = std::max(t, sec_left[s]);
        return t;
      }
      case 'W': return sec_hi[b] - sec_lo[b];
      case 'A': return size[b] * life[b];
      case 'Z': return size[b];
      default: return life[b];
    }
  }
  void rerank(std::vector<int>& piece) {
    size_t m = piece.size(), nk = keys.size();
    std::vector<i64> f(m * nk);
    std::vector<int> order(m);
    for (size_t i = 0; i < m; ++i) {
      order[i] = (int)i;
      for (size_t j = 0; j < nk; ++j) f[i * nk + j] = feature(keys[j], piece[i]);
    }
    std::sort(order.begin(), order.end(), [&](int x, int y) {
      for (size_t j = 0; j < nk; ++j)
        if (f[x * nk + j] != f[y * nk + j]) return f[x * nk + j] > f[y * nk + j];
      return piece[x] < piece[y];
    });
    std::vector<int> sorted(m);
    for (size_t i = 0; i < m; ++i) {
      sorted[i] = piece[order[i]];
      rank[sorted[i]] = (i64)i;
    }
    piece.swap(sorted);
  }

  bool solve_range(const std::vector<int>& bufs, int lo, int hi, int depth) {
    std::vector<int> piece_of(hi - lo);
    int pieces = 0;
    for (int k = lo; k < hi; ++k) {
      piece_of[k - lo] = pieces;
      if (k + 1 < hi && cuts[k] == 0) ++pieces;
    }
    std::vector<std::vector<int>> members_of(pieces + 1);
    for (int b : bufs) members_of[piece_of[sec_lo[b] - lo]].push_back(b);
    std::vector<i64> saved(bufs.size());  // the caller's ranks, restored on failure
    for (size_t i = 0; i < bufs.size(); ++i) saved[i] = rank[bufs[i]];
    int piece_lo = lo;
    for (int k = lo; k < hi; ++k) {
      if (k + 1 < hi && cuts[k] > 0) continue;
      std::vector<int>& piece = members_of[piece_of[k - lo]];
      if (!piece.empty()) {
        rerank(piece);
        if (!dfs(piece, piece_lo, k + 1, 0, -1, depth)) {
          for (size_t i = 0; i < bufs.size(); ++i) rank[bufs[i]] = saved[i];
          return false;
        }
      }
      piece_lo = k + 1;
    }
    return true;
  }

  bool dfs(const std::vector<int>& unplaced, int lo, int hi, i64 last, int last_buf, int depth) {
    if (unplaced.empty()) return true;
    if ((++nodes & 255) == 0 && (now() > deadline || (node_limit > 0 && nodes > node_limit))) aborted = true;
    if (aborted) return false;
    std::vector<Cand>& cands = cand_pool[depth];
    std::vector<int>& rest = rest_pool[depth];
    candidates(unplaced, last, cands);
    i64 most = 0;
    int arg = lo;
    for (int s = lo; s < hi; ++s)
      if (sec_left[s] > most) most = sec_left[s], arg = s;
    for (size_t i = 0; i < cands.size(); ++i) {
      std::pop_heap(cands.begin(), cands.end() - i, later);  // next by (offset, rank)
      i64 o = cands[cands.size() - 1 - i].offset;
      int b = cands[cands.size() - 1 - i].buf;
      if (o == last && last_buf >= 0 && rank[b] < rank[last_buf]) continue;  // symmetry
      if (o + most > cap && !precheck(b, lo, hi, o, most, arg)) {
        if (free_deg[b] == 0) return false;  // hatless, as below
        continue;
      }
      Mark m = mark();
      bool hatless;
      bool split = place(b, o, hatless);
      if (sections_ok_after(b, lo, hi, o)) {
        rest.clear();
        for (int u : unplaced) if (u != b) rest.push_back(u);
        if (split ? solve_range(rest, lo, hi, depth + 1) : dfs(rest, lo, hi, o, b, depth + 1)) return true;
      }
      undo_to(m);
      // Hatless: b's floor no longer depends on anything, so every solution
      // below this node puts b at o, next in (offset, rank) order before the
      // later candidates; its branch covered them (the header).
      if (aborted || hatless) return false;
    }
    return false;
  }
};

// Each searched buffer's blocked ranges: the fixed buffers [fstarts, fends)
// x [foffsets, foffsets + fsizes) that overlap it in time, merged by address
// (the fixed buffers are taken in offset order once, so no per-buffer sort).
void block_fixed(Search& s, const i64* starts, const i64* ends, int m, const i64* fstarts, const i64* fends,
                 const i64* foffsets, const i64* fsizes) {
  s.blocked.assign(s.n, {});
  std::vector<int> by_offset(m);
  for (int j = 0; j < m; ++j) by_offset[j] = j;
  std::sort(by_offset.begin(), by_offset.end(), [&](int x, int y) { return foffsets[x] < foffsets[y]; });
  for (int b = 0; b < s.n; ++b) {
    auto& out = s.blocked[b];
    for (int j : by_offset) {
      if (fstarts[j] >= ends[b] || fends[j] <= starts[b]) continue;
      i64 lo = foffsets[j], hi = foffsets[j] + fsizes[j];
      if (!out.empty() && lo <= out.back().second) out.back().second = std::max(out.back().second, hi);
      else out.emplace_back(lo, hi);
    }
  }
}

int run(int n, const i64* starts, const i64* ends, const i64* sizes, const i64* aligns, const char* keys, i64 cap,
        double seconds, i64 node_limit, int m, const i64* fstarts, const i64* fends, const i64* foffsets,
        const i64* fsizes, i64* offsets, i64* stats) {
  Search s;
  s.n = n;
  s.cap = cap;
  s.size.assign(sizes, sizes + n);
  s.align.assign(aligns, aligns + n);
  s.rank.assign(n, 0);
  s.keys.assign(keys, keys + strlen(keys));
  s.life.resize(n);
  for (int b = 0; b < n; ++b) s.life[b] = ends[b] - starts[b];
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
  s.free_deg.resize(n);
  for (int b = 0; b < n; ++b) s.free_deg[b] = (int)s.overlap[b].size();
  if (m > 0) block_fixed(s, starts, ends, m, fstarts, fends, foffsets, fsizes);
  s.stale_floors = m > 0;
  s.floor_raw.resize(n);
  for (int b = 0; b < n; ++b) s.floor_raw[b] = s.lift(b, 0);
  s.offset.assign(n, -1);
  for (int k = 0; k < s.num_sections; ++k) s.rescan(k);  // lowest member floors
  s.sec_trail.clear();
  std::vector<int> all(n);
  for (int b = 0; b < n; ++b) all[b] = b;
  s.cuts.assign(std::max(0, s.num_sections), 0);
  for (int b = 0; b < n; ++b)
    for (int k = s.sec_lo[b]; k + 1 < s.sec_hi[b]; ++k) ++s.cuts[k];
  s.deadline = Search::now() + seconds;
  s.node_limit = node_limit;
  s.cand_pool.resize(n + 2);
  s.rest_pool.resize(n + 2);
  bool ok = s.sections_ok(0, s.num_sections, 0) && s.solve_range(all, 0, s.num_sections, 0);
  stats[0] = s.nodes;
  if (ok) {
    for (int b = 0; b < n; ++b) offsets[b] = s.offset[b];
    return 1;
  }
  return s.aborted ? -1 : 0;
}

}  // namespace

extern "C" {

// Returns 1 (fits; offsets written), 0 (proved not to fit), -1 (budget spent).
// stats[0] = nodes explored.
int graphopt_dsa_fits(int n, const i64* starts, const i64* ends, const i64* sizes, const i64* aligns,
                      const char* keys, i64 cap, double seconds, i64 node_limit, i64* offsets, i64* stats) {
  return run(n, starts, ends, sizes, aligns, keys, cap, seconds, node_limit, 0, nullptr, nullptr, nullptr, nullptr,
             offsets, stats);
}

// The same search around m fixed buffers (start, end, offset, size): 1 fits
// (offsets written), 0 no answer found (not a proof: see the header), -1 budget spent.
int graphopt_dsa_fits_around(int n, const i64* starts, const i64* ends, const i64* sizes, const i64* aligns,
                             const char* keys, i64 cap, double seconds, i64 node_limit, int m, const i64* fstarts,
                             const i64* fends, const i64* foffsets, const i64* fsizes, i64* offsets, i64* stats) {
  return run(n, starts, ends, sizes, aligns, keys, cap, seconds, node_limit, m, fstarts, fends, foffsets, fsizes,
             offsets, stats);
}

}  // extern "C"

static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_dsa_native",
                                        "Native DSA search; called through ctypes.", -1, nullptr};

PyMODINIT_FUNC PyInit__dsa_native(void) { return PyModule_Create(&module_def); }
