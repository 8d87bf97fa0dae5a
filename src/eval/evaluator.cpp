// Batched full and sampled ranking, and the per-group breakdown.
#include "coco/eval/evaluator.h"

#include <algorithm>
#include <numeric>
#include <random>

#include <fmt/format.h>
#include <torch/torch.h>

#include "coco/common/error.h"
#include "coco/dist/process_group.h"

namespace coco {

EvalOptions EvalOptions::from_config(ConfigNode& node, int64_t max_len) {
  EvalOptions o;
  o.max_len = max_len;
  o.ks = node.get_int_list("ks", o.ks, 1);
  if (o.ks.empty()) node.fail("ks", "must list at least one cut-off");
  o.exclude_history = node.get_bool("exclude_history", o.exclude_history);
  o.num_negatives = node.get_int("num_negatives", o.num_negatives, 1);
  o.sampling = node.get_enum(
      "sampling", o.sampling,
      {{"uniform", NegativeSampling::kUniform}, {"popularity", NegativeSampling::kPopularity}});
  o.sample_seed = node.get_int("sample_seed", o.sample_seed, 0);
  o.batch_size = node.get_int("batch_size", o.batch_size, 1);
  o.length_buckets = node.get_int_list("length_buckets", o.length_buckets, 1);
  if (!std::is_sorted(o.length_buckets.begin(), o.length_buckets.end())) {
    node.fail("length_buckets", "must be increasing");
  }
  o.head_fraction = node.get_double("head_fraction", o.head_fraction, 0, 1);
  node.finish();
  return o;
}

const char* group_family_name(GroupFamily f) {
  return f == GroupFamily::kHistoryLength ? "history_length" : "item_popularity";
}

std::string EvalReport::describe_protocol() const {
  if (kind == Protocol::kFull) {
    return exclude_history ? "full ranking, history excluded" : "full ranking, history included";
  }
  return protocol;
}

namespace {

// Per row, how many scores are >= the row's threshold. On the CPU one fused pass (the
// torch expression allocates a [B, V] mask and sums it in a second pass).
torch::Tensor count_at_least(const torch::Tensor& scores,       // [B, C] float32
                             const torch::Tensor& threshold) {  // [B, 1]
  if (!scores.device().is_cpu()) return (scores >= threshold).sum(1);
  const auto s = scores.contiguous();
  const auto t = threshold.contiguous();
  const int64_t rows = s.size(0), cols = s.size(1);
  auto out = torch::empty({rows}, torch::kInt64);
  const float* sp = s.data_ptr<float>();
  const float* tp = t.data_ptr<float>();
  int64_t* op = out.data_ptr<int64_t>();
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = sp + r * cols;
    const float x = tp[r];
    int64_t n = 0;
    for (int64_t c = 0; c < cols; ++c) n += row[c] >= x;
    op[r] = n;
  }
  return out;
}

}  // namespace

Evaluator::Evaluator(const Interactions& data, EvalOptions options)
    : data_(data), options_(std::move(options)) {
  counts_ = train_item_counts(data_);
  cumulative_.assign(counts_.size(), 0.0);
  std::partial_sum(counts_.begin(), counts_.end(), cumulative_.begin(),
                   [](double acc, int64_t c) { return acc + static_cast<double>(c); });
  // Head items: the head_fraction most popular ones (ties broken by id, for determinism).
  std::vector<int64_t> ids(data_.num_items);
  std::iota(ids.begin(), ids.end(), 1);
  std::stable_sort(ids.begin(), ids.end(),
                   [&](int64_t a, int64_t b) { return counts_[a] > counts_[b]; });
  is_head_.assign(counts_.size(), 0);
  const auto n_head =
      static_cast<size_t>(options_.head_fraction * static_cast<double>(ids.size()) + 0.5);
  for (size_t i = 0; i < n_head && i < ids.size(); ++i) is_head_[ids[i]] = 1;
}

torch::Tensor Evaluator::sample_negatives(const std::vector<int64_t>& users, int64_t begin,
                                          int64_t end) const {
  const int64_t n = options_.num_negatives, v = data_.num_items;
  auto out = torch::empty({end - begin, n}, torch::kInt64);
  auto* ptr = out.data_ptr<int64_t>();
  std::vector<char> taken(v + 1, 0);
  const bool popular = options_.sampling == NegativeSampling::kPopularity;
  const double total = cumulative_.back();
  for (int64_t r = 0; r < end - begin; ++r) {
    const int64_t u = users[begin + r];
    const int32_t* s = data_.begin(u);
    int64_t available = v;
    for (int64_t k = 0; k < data_.length(u); ++k) {
      available -= taken[s[k]] ? 0 : 1;
      taken[s[k]] = 1;
    }
    if (available < n) {
      throw DataError("user " + std::to_string(u + 1) + " has only " + std::to_string(available) +
                      " items to sample " + std::to_string(n) + " negatives from");
    }
    std::mt19937_64 rng(
        mix_seed(static_cast<uint64_t>(options_.sample_seed), static_cast<uint64_t>(u)));
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    std::vector<int64_t> drawn;
    for (int64_t got = 0, tries = 0; got < n; ++tries) {
      int64_t item;
      if (popular && tries < 100 * n) {
        item = std::upper_bound(cumulative_.begin(), cumulative_.end(), unit(rng) * total) -
               cumulative_.begin();
        item = std::clamp<int64_t>(item, 1, v);
      } else {  // uniform, or popularity mass exhausted for this user
        item = 1 + static_cast<int64_t>(rng() % static_cast<uint64_t>(v));
      }
      if (taken[item]) continue;
      taken[item] = 1;
      drawn.push_back(item);
      ptr[r * n + got++] = item;
    }
    for (int64_t k = 0; k < data_.length(u); ++k) taken[s[k]] = 0;
    for (int64_t item : drawn) taken[item] = 0;
  }
  return out;
}

void Evaluator::exclude_histories(torch::Tensor& scores, const torch::Tensor& target_score,
                                  const EvalBatch& batch, const std::vector<int64_t>& users,
                                  int64_t begin, Split split) const {
  std::vector<int64_t> rows, cols;
  for (int64_t r = 0; r < scores.size(0); ++r) {
    const int64_t u = users[begin + r];
    const int32_t* s = data_.begin(u);
    for (int64_t k = 0; k < history_length(data_, u, split); ++k) {
      rows.push_back(r);
      cols.push_back(s[k]);
    }
  }
  const auto device = scores.device();
  scores.index_put_({torch::tensor(rows).to(device), torch::tensor(cols).to(device)},
                    -std::numeric_limits<float>::infinity());
  scores.scatter_(1, batch.target.unsqueeze(1), target_score);  // the target stays
}

EvalReport Evaluator::evaluate(RecommenderImpl& model, Split split, Protocol protocol,
                               torch::Device device) const {
  const bool was_training = model.is_training();
  model.eval();
  torch::NoGradGuard no_grad;
  const float neg_inf = -std::numeric_limits<float>::infinity();

  // Users in order of history length: each batch is then about as wide as its histories.
  std::vector<int64_t> users(data_.num_users());
  std::iota(users.begin(), users.end(), 0);
  std::stable_sort(users.begin(), users.end(), [&](int64_t a, int64_t b) {
    return history_length(data_, a, split) < history_length(data_, b, split);
  });
  // Data-parallel: rank r takes batches r, r + N, ...; the batches are those of a single
  // process, so each user's rank comes out bit for bit the same.
  const dist::Group& world = dist::world();
  std::vector<int64_t> ranks(users.size()), targets(users.size());  // by user id
  for (int64_t begin = world.rank() * options_.batch_size;
       begin < static_cast<int64_t>(users.size()); begin += world.size() * options_.batch_size) {
    const int64_t end = std::min<int64_t>(begin + options_.batch_size, users.size());
    EvalBatch batch = make_eval_batch(data_, users, begin, end, split, options_.max_len);
    const auto target_cpu = batch.target;
    batch = {batch.users.to(device), batch.history.to(device), batch.target.to(device)};
    const auto repr = model.user_repr(batch);  // [B, d]
    torch::Tensor rank, target_score;          // [B], [B, 1]
    if (protocol == Protocol::kFull) {
      auto scores = model.score_all(repr).to(torch::kFloat32);  // [B, V + 1]
      target_score = scores.gather(1, batch.target.unsqueeze(1));
      scores.select(1, 0).fill_(neg_inf);
      if (options_.exclude_history)
        exclude_histories(scores, target_score, batch, users, begin, split);
      // Pessimistic rank: every other item scoring >= the target is ahead of it.
      rank = count_at_least(scores, target_score) - 1;
    } else {
      const auto negatives = sample_negatives(users, begin, end).to(device);  // [B, N]
      const auto candidates = torch::cat({batch.target.unsqueeze(1), negatives}, 1);
      const auto scores = model.score(repr, candidates).to(torch::kFloat32);  // [B, 1 + N]
      target_score = scores.narrow(1, 0, 1);
      rank = count_at_least(scores, target_score) - 1;
    }
    // A NaN target compares false with everything: rank it last, never first.
    rank = torch::where(torch::isnan(target_score.squeeze(1)),
                        torch::full_like(rank, data_.num_items - 1), rank);
    const auto rank_cpu = rank.to(torch::kCPU).to(torch::kInt64);
    for (int64_t r = 0; r < end - begin; ++r) {
      ranks[users[begin + r]] = rank_cpu.data_ptr<int64_t>()[r];
      targets[users[begin + r]] = target_cpu.data_ptr<int64_t>()[r];
    }
  }
  if (was_training) model.train();
  if (world.size() > 1) {  // each user's rank came from one worker, zeros from the others
    auto all = torch::from_blob(ranks.data(), {static_cast<int64_t>(ranks.size())}, torch::kInt64);
    world.all_reduce({all}, dist::ReduceOp::kSum,
                     fmt::format("all-reduce of the {} ranks", split_name(split)));
    for (int64_t u = 0; u < data_.num_users(); ++u) {
      targets[u] = data_.begin(u)[history_length(data_, u, split)];
    }
  }

  EvalReport report;
  report.split = split_name(split);
  report.kind = protocol;
  report.protocol =
      protocol == Protocol::kFull
          ? "full"
          : "sampled-" + std::to_string(options_.num_negatives) +
                (options_.sampling == NegativeSampling::kPopularity ? "-popularity" : "-uniform");
  report.exclude_history = options_.exclude_history;
  report.users = static_cast<int64_t>(users.size());
  report.metrics = compute_metrics(ranks, options_.ks);
  report.ranks = std::move(ranks);
  add_groups(report, split, targets);
  return report;
}

void Evaluator::add_groups(EvalReport& report, Split split,
                           const std::vector<int64_t>& targets) const {
  const auto& edges = options_.length_buckets;
  std::vector<std::vector<int64_t>> by_length(edges.size() + 1);
  std::vector<std::vector<int64_t>> by_pop(2);
  for (int64_t u = 0; u < static_cast<int64_t>(report.ranks.size()); ++u) {
    const int64_t len = history_length(data_, u, split);
    const size_t bucket = std::lower_bound(edges.begin(), edges.end(), len) - edges.begin();
    by_length[bucket].push_back(report.ranks[u]);
    by_pop[is_head_[targets[u]] ? 0 : 1].push_back(report.ranks[u]);
  }
  for (size_t b = 0; b < by_length.size(); ++b) {
    if (by_length[b].empty()) continue;  // an empty group has no metrics, not zeros
    const int64_t lo = b == 0 ? 1 : edges[b - 1] + 1;
    const std::string name = b == edges.size()
                                 ? std::to_string(lo) + "+"
                                 : std::to_string(lo) + "-" + std::to_string(edges[b]);
    report.groups.push_back({GroupFamily::kHistoryLength, name,
                             static_cast<int64_t>(by_length[b].size()),
                             compute_metrics(by_length[b], options_.ks)});
  }
  const char* pop_names[2] = {"head", "tail"};
  for (int g = 0; g < 2; ++g) {
    if (by_pop[g].empty()) continue;
    report.groups.push_back({GroupFamily::kItemPopularity, pop_names[g],
                             static_cast<int64_t>(by_pop[g].size()),
                             compute_metrics(by_pop[g], options_.ks)});
  }
}

}  // namespace coco
