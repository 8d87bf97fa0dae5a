// Raw Amazon dumps -> uniform dataset (see include/coco/data/amazon_raw.h): the top-level
// conversion, run as named steps (amazon_steps.h), and the writer of sequences.txt and
// items.tsv. No torch here: these files must compile fast.
#include "coco/data/amazon_raw.h"

#include <algorithm>
#include <filesystem>

#include "amazon_steps.h"
#include "coco/common/atomic_file.h"
#include "coco/common/error.h"
#include "coco/common/log.h"

namespace coco::data {

AmazonFormat parse_amazon_format(const std::string& name) {
  if (name == "auto") return AmazonFormat::kAuto;
  if (name == "2014") return AmazonFormat::k2014;
  if (name == "2018") return AmazonFormat::k2018;
  if (name == "2023") return AmazonFormat::k2023;
  throw Error("unknown Amazon format '" + name + "' (expected auto, 2014, 2018 or 2023)");
}

AmazonDataset convert_amazon_raw(const AmazonRawOptions& options) {
  if (options.k < 1) throw Error("k-core must be at least 1, got " + std::to_string(options.k));
  raw::Reviews reviews = raw::read_reviews(options.reviews_path, options.format);
  log().info("[data] {}: {} reviews, {} users, {} items", options.reviews_path, reviews.lines,
             reviews.user_raw.size(), reviews.item_raw.size());

  AmazonDataset out;
  out.reviews_read = reviews.lines;
  auto seqs =
      raw::chronological_sequences(reviews, options.drop_duplicates, out.duplicates_dropped);
  out.kcore_passes = raw::filter_kcore(seqs, reviews.item_raw.size(), options.k);
  const auto wanted = raw::number_by_first_appearance(seqs, reviews, out);
  if (out.sequences.empty()) {
    throw DataError(options.reviews_path + ": no interactions left after " +
                    std::to_string(options.k) + "-core filtering (" +
                    std::to_string(reviews.lines) + " reviews, " +
                    std::to_string(reviews.user_raw.size()) + " users, " +
                    std::to_string(reviews.item_raw.size()) + " items read)");
  }
  log().info("[data] {}-core after {} filtering passes: {} users, {} items, {} interactions",
             options.k, out.kcore_passes, out.sequences.size(), out.items.size(),
             out.num_interactions);

  if (!options.meta_path.empty()) raw::read_meta(options.meta_path, options.format, wanted, out);
  return out;
}

void write_uniform_dataset(const AmazonDataset& dataset, const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw DataError(dir + ": cannot create directory: " + ec.message());

  std::string seq;
  for (size_t u = 0; u < dataset.sequences.size(); ++u) {
    seq += std::to_string(u + 1);
    for (int64_t i : dataset.sequences[u]) {
      seq += ' ';
      seq += std::to_string(i);
    }
    seq += '\n';
  }
  const bool long_text =
      std::any_of(dataset.items.begin(), dataset.items.end(),
                  [](const auto& it) { return !it.features.empty() || !it.description.empty(); });
  std::string tsv = "item_id\traw_id\ttitle\tbrand\tcategories";
  tsv += long_text ? "\tfeatures\tdescription\n" : "\n";
  for (size_t i = 0; i < dataset.items.size(); ++i) {
    const AmazonItem& it = dataset.items[i];
    tsv += std::to_string(i + 1) + '\t' + it.raw_id + '\t' + it.title + '\t' + it.brand + '\t' +
           it.categories;
    if (long_text) tsv += '\t' + it.features + '\t' + it.description;
    tsv += '\n';
  }
  const std::filesystem::path d(dir);
  write_file_atomic((d / "sequences.txt").string(), seq);
  write_file_atomic((d / "items.tsv").string(), tsv);
  log().info("[data] wrote {} and {}", (d / "sequences.txt").string(), (d / "items.tsv").string());
}

}  // namespace coco::data
