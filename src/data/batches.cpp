// Leave-one-out windows cut from the CSR array into padded int64 tensors.
#include "coco/data/batches.h"

#include <algorithm>
#include <numeric>
#include <random>

namespace coco {

const char* split_name(Split s) { return s == Split::kValid ? "valid" : "test"; }

uint64_t mix_seed(uint64_t a, uint64_t b) {
  uint64_t z = a + 0x9E3779B97F4A7C15ULL * (b + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

torch::Tensor TrainBatch::inputs() const { return items.narrow(1, 0, items.size(1) - 1); }

torch::Tensor TrainBatch::targets() const { return items.narrow(1, 1, items.size(1) - 1); }

EvalBatch TrainBatch::last_item() const {
  const int64_t l = items.size(1) - 1;
  return {users, items.narrow(1, 0, l), items.select(1, l)};
}

namespace {

// Copies the last `width` items of [first, last) into row `row` of `out`, right-aligned.
template <typename T>
void fill_row(int64_t* out, int64_t width, const T* first, const T* last) {
  const int64_t n = std::min<int64_t>(width, last - first);
  std::fill(out, out + width - n, 0);
  std::copy(last - n, last, out + width - n);
}

}  // namespace

TrainLoader::TrainLoader(const Interactions& data, int64_t max_len, int64_t batch_size,
                         uint64_t seed, bool by_length, int64_t rank, int64_t world_size)
    : data_(data),
      max_len_(max_len),
      batch_size_(batch_size),
      seed_(seed),
      by_length_(by_length),
      rank_(rank),
      world_size_(world_size) {
  set_epoch(0);
}

void TrainLoader::set_epoch(int64_t epoch) {
  std::vector<int64_t> all(data_.num_users());
  std::iota(all.begin(), all.end(), 0);
  // Fisher-Yates with our own index draw: identical on every platform.
  std::mt19937_64 rng(mix_seed(seed_, static_cast<uint64_t>(epoch)));
  auto shuffle = [&rng](auto& v) {
    for (int64_t i = static_cast<int64_t>(v.size()) - 1; i > 0; --i) {
      std::swap(v[i], v[rng() % static_cast<uint64_t>(i + 1)]);
    }
  };
  shuffle(all);
  if (by_length_) {
    // Sort by length (ties stay shuffled), cut into batches, shuffle the batches.
    std::stable_sort(all.begin(), all.end(),
                     [&](int64_t a, int64_t b) { return data_.length(a) < data_.length(b); });
    std::vector<int64_t> starts;
    for (int64_t s0 = 0; s0 < static_cast<int64_t>(all.size()); s0 += batch_size_)
      starts.push_back(s0);
    shuffle(starts);
    std::vector<int64_t> grouped;
    for (int64_t s0 : starts) {
      grouped.insert(grouped.end(), all.begin() + s0,
                     all.begin() + std::min<int64_t>(s0 + batch_size_, all.size()));
    }
    all.swap(grouped);
  }
  order_.swap(all);
}

int64_t TrainLoader::num_batches() const {
  const auto n = static_cast<int64_t>(order_.size());
  const int64_t full = n / batch_size_, rest = n % batch_size_;
  // A last batch of fewer users than ranks joins the one before it.
  return full + (rest > 0 && (rest >= world_size_ || full == 0) ? 1 : 0);
}

int64_t TrainLoader::begin_of(int64_t index) const { return index * batch_size_; }

int64_t TrainLoader::end_of(int64_t index) const {
  const auto n = static_cast<int64_t>(order_.size());
  return index + 1 == num_batches() ? n : std::min(n, (index + 1) * batch_size_);
}

int64_t TrainLoader::global_size(int64_t index) const { return end_of(index) - begin_of(index); }

TrainBatch TrainLoader::batch(int64_t index) const {
  std::vector<int64_t> rows;
  for (int64_t i = begin_of(index) + rank_; i < end_of(index); i += world_size_)
    rows.push_back(order_[i]);
  int64_t longest = 0;
  for (int64_t u : rows) longest = std::max(longest, data_.length(u) - 2);
  // Columns that are padding for every row are dropped; one always stays, so that models
  // which shift the window (BERT4Rec drops its first column) lose no item.
  const auto b = static_cast<int64_t>(rows.size());
  const int64_t width = std::min(max_len_ + 1, longest + 1);
  TrainBatch out{torch::empty({b}, torch::kInt64), torch::empty({b, width}, torch::kInt64)};
  auto* users = out.users.data_ptr<int64_t>();
  auto* items = out.items.data_ptr<int64_t>();
  for (int64_t r = 0; r < b; ++r) {
    const int64_t u = rows[r];
    users[r] = u;
    const int32_t* s = data_.begin(u);
    fill_row(items + r * width, width, s, s + data_.length(u) - 2);
  }
  return out;
}

EvalBatch random_prefixes(const TrainBatch& batch) {
  const auto items = batch.items.to(torch::kCPU).contiguous();
  const int64_t b = items.size(0), w = items.size(1);
  const auto draw = torch::rand({b}, torch::kFloat64);
  const double* u = draw.data_ptr<double>();
  const int64_t* in = items.data_ptr<int64_t>();
  auto history = torch::empty({b, w - 1}, torch::kInt64);
  auto target = torch::empty({b}, torch::kInt64);
  int64_t *out = history.data_ptr<int64_t>(), *out_target = target.data_ptr<int64_t>();
  int64_t longest = 0;
  for (int64_t r = 0; r < b; ++r) {
    const int64_t* row = in + r * w;
    const int64_t first = std::find_if(row, row + w, [](int64_t x) { return x > 0; }) - row;
    const int64_t choices = std::max<int64_t>(w - 1 - first, 1);
    const int64_t t =
        std::min(w - 1, first + 1 + static_cast<int64_t>(u[r] * static_cast<double>(choices)));
    fill_row(out + r * (w - 1), w - 1, row + first, row + t);
    out_target[r] = row[t];
    longest = std::max(longest, t - first);
  }
  const int64_t width = std::min(w - 1, longest + 1);  // all-padding columns but one cut, as above
  const auto device = batch.items.device();
  return {batch.users, history.narrow(1, w - 1 - width, width).to(device), target.to(device)};
}

int64_t history_length(const Interactions& data, int64_t u, Split split) {
  return data.length(u) - (split == Split::kValid ? 2 : 1);
}

namespace {

// Each user's history ends `held_out` items before the end of the sequence; the target is
// the item after it (0 when held_out is 0).
EvalBatch history_batch(const Interactions& data, const std::vector<int64_t>& users, int64_t begin,
                        int64_t end, int64_t held_out, int64_t max_len) {
  const int64_t b = end - begin;
  int64_t longest = 0;
  for (int64_t r = begin; r < end; ++r)
    longest = std::max(longest, data.length(users[r]) - held_out);
  max_len = std::min(max_len, longest + 1);  // drop all-padding columns but one, as above
  EvalBatch out{torch::empty({b}, torch::kInt64), torch::empty({b, max_len}, torch::kInt64),
                torch::empty({b}, torch::kInt64)};
  auto* u_ptr = out.users.data_ptr<int64_t>();
  auto* h_ptr = out.history.data_ptr<int64_t>();
  auto* t_ptr = out.target.data_ptr<int64_t>();
  for (int64_t r = 0; r < b; ++r) {
    const int64_t u = users[begin + r];
    const int64_t n = data.length(u) - held_out;
    const int32_t* s = data.begin(u);
    u_ptr[r] = u;
    fill_row(h_ptr + r * max_len, max_len, s, s + n);
    t_ptr[r] = held_out > 0 ? s[n] : 0;
  }
  return out;
}

}  // namespace

EvalBatch make_eval_batch(const Interactions& data, const std::vector<int64_t>& users,
                          int64_t begin, int64_t end, Split split, int64_t max_len) {
  return history_batch(data, users, begin, end, split == Split::kValid ? 2 : 1, max_len);
}

EvalBatch make_history_batch(const Interactions& data, const std::vector<int64_t>& users,
                             int64_t begin, int64_t end, int64_t max_len) {
  return history_batch(data, users, begin, end, 0, max_len);
}

std::vector<int64_t> train_item_counts(const Interactions& data) {
  std::vector<int64_t> counts(data.num_items + 1, 0);
  for (int64_t u = 0; u < data.num_users(); ++u) {
    const int32_t* s = data.begin(u);
    for (int64_t k = 0; k + 2 < data.length(u); ++k) ++counts[s[k]];
  }
  return counts;
}

}  // namespace coco
