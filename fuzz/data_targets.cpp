// The targets of the data side's readers and of the config parser.
#include "coco/config/config.h"
#include "coco/data/amazon_raw.h"
#include "coco/data/readers.h"
#include "coco/eval/evaluator.h"
#include "coco/train/options.h"
#include "input.h"
#include "targets.h"

namespace coco::fuzz {

// The first line is a --set override ("a.b=value"), the rest a JSON config; the run, data,
// train and eval options are read from it as Experiment::build reads them.
void config(std::string_view input) {
  const size_t eol = std::min(input.find('\n'), input.size());
  const std::string path = write_file("config.json", input.substr(std::min(eol + 1, input.size())));
  read_or_reject([&] {
    Json json = read_json_file(path);
    apply_override(json, std::string(input.substr(0, eol)));
    ConfigNode root(json, path);
    (void)RunOptions::from_config(root);
    ConfigNode data = root.child("data");
    (void)DataOptions::from_config(data);
    ConfigNode train = root.child("train");
    (void)TrainOptions::from_config(train, 50);
    ConfigNode eval = root.child("eval");
    (void)EvalOptions::from_config(eval, 50);
  });
}

// items.tsv, a line "----", then sequences.txt (checked against the catalogue's size).
void dataset(std::string_view input) {
  const auto parts = split_parts(input, 2);
  const std::string items = write_file("items.tsv", parts[0]);
  const std::string sequences = write_file("sequences.txt", parts[1]);
  read_or_reject([&] {
    const ItemCatalog catalog = read_items_tsv(items);
    (void)read_sequences_txt(sequences, catalog.size(), 3);
  });
}

// fuzz.inter, a line "----", then fuzz.item, read as data.format = "recbole" reads them.
void recbole(std::string_view input) {
  const auto parts = split_parts(input, 2);
  write_file("fuzz.inter", parts[0]);
  write_file("fuzz.item", parts[1]);
  DataOptions options;
  options.name = "fuzz";
  options.format = DataFormat::kRecBole;
  read_or_reject([&] { (void)read_recbole(work_dir().string(), "fuzz", options); });
}

// The reviews file, a line "----", then the metadata file; either may be gzip data (the
// reader goes by the magic bytes) in any release's format: 2014 (Python literals), 2018
// (JSON) or 2023 (JSON, other field names), as "auto" reads them.
void amazon(std::string_view input) {
  const auto parts = split_parts(input, 2);
  data::AmazonRawOptions options;
  options.reviews_path = write_file("reviews_Fuzz_5.json.gz", parts[0]);
  options.meta_path = write_file("meta_Fuzz.json.gz", parts[1]);
  options.k = 2;
  read_or_reject([&] { (void)data::convert_amazon_raw(options); });
}

}  // namespace coco::fuzz
