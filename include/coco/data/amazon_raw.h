// Converter from raw Amazon review dumps (McAuley lab, 2014, 2018 and 2023 releases) to the
// project's uniform dataset format (sequences.txt + items.tsv), following S3-Rec's
// data_process.py. Not a general JSON library and not a dataset loader for training.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace coco::data {

/// Syntax and field names of the input lines. 2014: reviews are strict JSON, metadata are
/// Python dict literals. 2018: both files are strict JSON lines. 2014 and 2018 name the user
/// reviewerID, the item asin and the time unixReviewTime (seconds). 2023 (Amazon Reviews
/// 2023): strict JSON lines naming them user_id, parent_asin and timestamp (milliseconds);
/// the metadata's parent_asin, store (the brand), features and description. Auto: every
/// line may use either syntax; a file's first record decides the names (2023's when it has
/// user_id, in the metadata parent_asin), so times are never compared across units.
enum class AmazonFormat { kAuto, k2014, k2018, k2023 };

/// Parses "auto", "2014", "2018" or "2023"; anything else throws coco::Error.
AmazonFormat parse_amazon_format(const std::string& name);

struct AmazonRawOptions {
  std::string reviews_path;  // reviews_<Cat>_5.json.gz, <Cat>_5.json.gz or <Cat>.jsonl(.gz)
  std::string meta_path;     // meta_<Cat>.json(l).gz; empty: items.tsv gets raw ids only
  int64_t k = 5;             // user and item core (>= 1)
  AmazonFormat format = AmazonFormat::kAuto;
  bool drop_duplicates = false;  // keep only a user's earliest review of an item
};

/// One row of items.tsv; text fields are already cleaned (see clean_text()).
struct AmazonItem {
  std::string raw_id;       // ASIN
  std::string title;        // may be empty
  std::string brand;        // may be empty
  std::string categories;   // category path levels except the root, joined with " | "
  std::string features;     // 2018 feature / 2023 features, joined with " | "
  std::string description;  // description (2014 one string, 2018/2023 a list joined by " ")
};

/// The converted dataset. User u (1-based) is user_raw_ids[u-1] with items
/// sequences[u-1] (1-based item ids, oldest first); item i is items[i-1].
struct AmazonDataset {
  std::vector<std::string> user_raw_ids;
  std::vector<std::vector<int64_t>> sequences;
  std::vector<AmazonItem> items;

  int64_t reviews_read = 0;        // review lines in the file
  int64_t duplicates_dropped = 0;  // only with drop_duplicates
  int64_t kcore_passes = 0;        // filtering passes until the k-core held
  int64_t num_interactions = 0;    // sum of sequence lengths
  int64_t items_with_title = 0;
  int64_t items_with_meta = 0;  // items that had a metadata line
};

/// Reads both files, filters and numbers as S3-Rec does. Every malformed line throws
/// coco::DataError "<file>:<line>: <problem>"; an empty k-core throws coco::DataError.
AmazonDataset convert_amazon_raw(const AmazonRawOptions& options);

/// Writes <dir>/sequences.txt and <dir>/items.tsv (creating dir), each atomically
/// (written to a temporary file in dir, then renamed); items.tsv has the columns features and
/// description only when an item has one. Throws coco::DataError on I/O errors.
void write_uniform_dataset(const AmazonDataset& dataset, const std::string& dir);

/// Text cleaning used for every items.tsv field: HTML entities unescaped once (&amp;
/// &quot; &#39; &apos; &lt; &gt; &nbsp; and numeric &#N; / &#xH;), tab/CR/LF/other ASCII
/// whitespace turned into spaces, runs collapsed, ends trimmed.
std::string clean_text(const std::string& text);

}  // namespace coco::data
