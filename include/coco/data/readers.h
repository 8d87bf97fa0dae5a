// Readers for the two on-disk formats the framework accepts:
//  * uniform: `sequences.txt` ("user item item ...") + `items.tsv` (see ../shared/data/README.md);
//  * RecBole atomic files: `<name>.inter` (typed header, user/item/timestamp fields) and an
//    optional `<name>.item` with text fields.
// Every malformed input throws DataError naming file, line and problem.
#pragma once

#include <string>

#include "coco/config/config.h"
#include "coco/data/dataset.h"

namespace coco {

enum class DataFormat { kUniform, kRecBole };  // "uniform" | "recbole"

/// Where and how to load a dataset (the config's "data" object).
struct DataOptions {
  std::string name;  // e.g. "amazon-beauty"
  std::string path;  // explicit directory; empty: search (see locate_dataset)
  DataFormat format = DataFormat::kUniform;
  int64_t max_len = 50;     // L: most recent items a model sees
  int64_t min_length = 3;   // shortest sequence accepted (leave-one-out needs 3)
  std::string title_field;  // RecBole: text field used as title ("" = auto)
  int64_t max_users = 0;    // keep only the first N users (a quick slice); 0 = all

  static DataOptions from_config(ConfigNode& node);
};

/// Reads `items.tsv`: header then one row per item id 1..N in order.
ItemCatalog read_items_tsv(const std::string& file);

/// Reads `sequences.txt`; item ids must lie in 1..num_items.
Interactions read_sequences_txt(const std::string& file, int64_t num_items, int64_t min_length);

/// Reads RecBole atomic files `<dir>/<name>.inter` and, when present, `<dir>/<name>.item`.
Dataset read_recbole(const std::string& dir, const std::string& name, const DataOptions& opt);

/// Finds the dataset directory: `path` if given, else `data/<name>` and `../shared/data/<name>`
/// relative to the working directory and to `config_dir/..`. Throws DataError listing
/// every place it looked.
std::string locate_dataset(const DataOptions& opt, const std::string& config_dir);

/// Locates and loads a dataset in either format, logging its statistics.
Dataset load_dataset(const DataOptions& opt, const std::string& config_dir);

}  // namespace coco
