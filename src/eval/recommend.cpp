// Top-K lists and the exported vectors (see recommend.h).
#include "coco/eval/recommend.h"

#include <algorithm>
#include <filesystem>
#include <limits>
#include <numeric>

#include <torch/torch.h>

#include "coco/common/atomic_file.h"
#include "coco/common/error.h"
#include "coco/llm/safetensors.h"

namespace coco {

namespace {

int64_t history_size(const Interactions& data, int64_t u, const RecommendOptions& o) {
  return o.split ? history_length(data, u, *o.split) : data.length(u);
}

// Every user (0..U-1) when `users` is empty.
std::vector<int64_t> or_everyone(const Interactions& data, std::vector<int64_t> users) {
  if (users.empty()) {
    users.resize(static_cast<size_t>(data.num_users()));
    std::iota(users.begin(), users.end(), 0);
  }
  for (const int64_t u : users) {
    if (u < 0 || u >= data.num_users())
      throw Error("user " + std::to_string(u + 1) + " is not in 1.." +
                  std::to_string(data.num_users()));
  }
  return users;
}

// Positions of `users` in order of history length, as the evaluator orders them, so that
// all users in id order give the evaluator's batches.
std::vector<int64_t> batch_order(const Interactions& data, const std::vector<int64_t>& users,
                                 const RecommendOptions& o) {
  std::vector<int64_t> order(users.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return history_size(data, users[a], o) < history_size(data, users[b], o);
  });
  return order;
}

std::vector<int64_t> take(const std::vector<int64_t>& v, const std::vector<int64_t>& at) {
  std::vector<int64_t> out;
  out.reserve(at.size());
  for (const int64_t i : at) out.push_back(v[static_cast<size_t>(i)]);
  return out;
}

// Calls fn(batch) for each batch of `users` (in batch order), the model in eval mode.
template <typename Fn>
void for_each_batch(RecommenderImpl& model, const Interactions& data,
                    const std::vector<int64_t>& users, const RecommendOptions& o,
                    torch::Device device, Fn&& fn) {
  const bool was_training = model.is_training();
  model.eval();
  torch::NoGradGuard no_grad;
  const auto n = static_cast<int64_t>(users.size());
  for (int64_t begin = 0; begin < n; begin += o.batch_size) {
    const int64_t end = std::min(begin + o.batch_size, n);
    EvalBatch b = o.split ? make_eval_batch(data, users, begin, end, *o.split, o.max_len)
                          : make_history_batch(data, users, begin, end, o.max_len);
    b = {b.users.to(device), b.history.to(device), b.target.to(device)};
    fn(b);
  }
  if (was_training) model.train();
}

// Sets the scores of padding and, when asked, of each user's history to -inf.
void exclude(torch::Tensor& scores, const Interactions& data, const std::vector<int64_t>& users,
             int64_t begin, const RecommendOptions& o) {
  const float neg_inf = -std::numeric_limits<float>::infinity();
  scores.select(1, 0).fill_(neg_inf);
  if (!o.exclude_history) return;
  std::vector<int64_t> rows, cols;
  for (int64_t r = 0; r < scores.size(0); ++r) {
    const int64_t u = users[begin + r];
    const int32_t* s = data.begin(u);
    for (int64_t k = 0; k < history_size(data, u, o); ++k) {
      rows.push_back(r);
      cols.push_back(s[k]);
    }
  }
  const auto device = scores.device();
  scores.index_put_({torch::tensor(rows).to(device), torch::tensor(cols).to(device)}, neg_inf);
}

// The histories to exclude, as compressed rows: user u's are items[offsets[u]..offsets[u+1]).
std::pair<torch::Tensor, torch::Tensor> histories(const Interactions& data,
                                                  const RecommendOptions& o) {
  const int64_t n_users = data.num_users();
  auto offsets = torch::zeros({n_users + 1}, torch::kInt64);
  auto* off = offsets.data_ptr<int64_t>();
  for (int64_t u = 0; u < n_users; ++u)
    off[u + 1] = off[u] + (o.exclude_history ? history_size(data, u, o) : 0);
  auto items = torch::empty({off[n_users]}, torch::kInt32);
  for (int64_t u = 0; u < n_users; ++u)
    std::copy(data.begin(u), data.begin(u) + (off[u + 1] - off[u]),
              items.data_ptr<int32_t>() + off[u]);
  return {offsets, items};
}

}  // namespace

Recommendations recommend(RecommenderImpl& model, const Interactions& data,
                          std::vector<int64_t> users, const RecommendOptions& o,
                          torch::Device device) {
  if (o.k < 1 || o.k > data.num_items)
    throw Error("K = " + std::to_string(o.k) + " must be in 1.." + std::to_string(data.num_items) +
                " (the items)");
  Recommendations out;
  out.users = or_everyone(data, std::move(users));
  const std::vector<int64_t> order = batch_order(data, out.users, o);
  const std::vector<int64_t> batched = take(out.users, order);
  const auto n = static_cast<int64_t>(batched.size());
  out.items = torch::empty({n, o.k}, torch::kInt64);
  out.scores = torch::empty({n, o.k}, torch::kFloat32);
  const auto rows = torch::tensor(order, torch::kInt64);  // batched row r → asked row
  int64_t begin = 0;
  for_each_batch(model, data, batched, o, device, [&](const EvalBatch& batch) {
    auto scores = model.score_all(model.user_repr(batch)).to(torch::kFloat32);  // [B, V+1]
    exclude(scores, data, batched, begin, o);
    const auto [top, ids] = scores.topk(o.k, 1);
    const int64_t b = batch.users.size(0);
    const auto at = rows.narrow(0, begin, b);
    out.scores.index_copy_(0, at, top.to(torch::kCPU));
    out.items.index_copy_(0, at, ids.to(torch::kCPU));
    begin += b;
  });
  // A user with fewer than K items left, or a model whose scores are not finite.
  const auto bad = (~torch::isfinite(out.scores)).any(1).nonzero();
  if (bad.numel() > 0) {
    const int64_t r = bad[0][0].item<int64_t>();
    const int64_t u = out.users[static_cast<size_t>(r)];
    const bool nan = torch::isnan(out.scores[r]).any().item<bool>();
    throw Error("user " + std::to_string(u + 1) + ": " +
                (nan ? "the scores are NaN (the checkpoint's weights are not finite)"
                     : "fewer than K = " + std::to_string(o.k) +
                           " items are left to recommend once the history is excluded"));
  }
  return out;
}

torch::Tensor per_user(RecommenderImpl& model, const Interactions& data, const RecommendOptions& o,
                       torch::Device device,
                       const std::function<torch::Tensor(const EvalBatch&)>& fn) {
  const std::vector<int64_t> everyone = or_everyone(data, {});
  torch::Tensor out;
  for_each_batch(model, data, take(everyone, batch_order(data, everyone, o)), o, device,
                 [&](const EvalBatch& batch) {
                   const auto rows = fn(batch).to(torch::kCPU, torch::kFloat32);
                   if (!out.defined()) {
                     auto shape = rows.sizes().vec();
                     shape[0] = data.num_users();
                     out = torch::zeros(shape, torch::kFloat32);
                   }
                   out.index_copy_(0, batch.users.cpu(), rows);
                 });
  return out;
}

void export_embeddings(RecommenderImpl& model, const Interactions& data, const RecommendOptions& o,
                       torch::Device device, const std::string& dir, const Json& describe,
                       const std::vector<ExportedVectors>& extra) {
  const ItemTable table = model.item_table();
  const auto items = table.items.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  const auto bias = table.bias.defined()
                        ? table.bias.detach().to(torch::kCPU, torch::kFloat32).contiguous()
                        : torch::zeros({items.size(0)}, torch::kFloat32);
  const auto [offsets, history] = histories(data, o);
  std::vector<std::pair<std::string, torch::Tensor>> tensors = {
      {"users",
       per_user(model, data, o, device, [&](const EvalBatch& b) { return model.user_repr(b); })},
      {"items", items},
      {"item_bias", bias},
      {"history_offsets", offsets},
      {"history_items", history}};
  Json meta = describe;
  meta["format"] = "coco-embeddings/1";
  meta["file"] = "embeddings.safetensors";
  meta["history"] = o.split ? split_name(*o.split) : "next";
  meta["score"] = "users[u] . items[i] + item_bias[i]; the higher, the better";
  meta["tensors"] = {
      {"users", "[U, d] float32: row u is the user with id u + 1 in sequences.txt"},
      {"items", "[V + 1, d] float32: row i is item id i; row 0 is padding, never recommend it"},
      {"item_bias", "[V + 1] float32 (zeros for models without an output bias)"},
      {"history_offsets",
       "[U + 1] int64: user u's items to exclude are "
       "history_items[history_offsets[u]:history_offsets[u + 1]]"},
      {"history_items", "int32 item ids (empty when the history is not excluded)"}};
  for (const auto& e : extra) {
    tensors.emplace_back(e.name, e.rows);
    meta["tensors"][e.name] = e.meaning;
  }
  meta["users"] = data.num_users();
  meta["items"] = data.num_items;
  meta["dim"] = items.size(1);

  std::filesystem::create_directories(dir);
  replace_file_atomic((std::filesystem::path(dir) / "embeddings.safetensors").string(),
                      [&](const std::string& tmp) { llm::save_safetensors(tmp, tensors); });
  write_json_atomic((std::filesystem::path(dir) / "embeddings.json").string(), meta);
}

}  // namespace coco
