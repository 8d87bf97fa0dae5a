// coco-data: converts raw public datasets into the uniform format (sequences.txt +
// items.tsv). A thin CLI over coco/data; all the work and all the checks live there.
//   coco-data amazon --reviews FILE [--meta FILE] --out DIR [--k 5] [--format auto|2014|2018|2023]
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "coco/common/error.h"
#include "coco/common/log.h"
#include "coco/data/amazon_raw.h"

namespace {

int run_amazon(const coco::data::AmazonRawOptions& options, const std::string& out_dir) {
  const coco::data::AmazonDataset ds = coco::data::convert_amazon_raw(options);
  coco::data::write_uniform_dataset(ds, out_dir);
  const double pct = ds.items.empty() ? 0.0 : 100.0 * ds.items_with_title / ds.items.size();
  std::printf("users            %zu\n", ds.user_raw_ids.size());
  std::printf("items            %zu\n", ds.items.size());
  std::printf("interactions     %lld\n", static_cast<long long>(ds.num_interactions));
  std::printf("items with title %lld (%.2f %%)\n", static_cast<long long>(ds.items_with_title),
              pct);
  std::printf("written          %s/sequences.txt, %s/items.tsv\n", out_dir.c_str(),
              out_dir.c_str());
  return coco::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  return coco::run_tool("coco-data", [&]() -> int {
    CLI::App app{"Converts raw public datasets into CoCo's uniform format."};
    app.require_subcommand(1);
    std::string log_level = "info";
    app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
        ->capture_default_str();

    coco::data::AmazonRawOptions amazon;
    std::string out_dir, format = "auto";
    CLI::App* cmd = app.add_subcommand("amazon", "Amazon review dump (2014, 2018 or 2023 release)");
    cmd->add_option("--reviews", amazon.reviews_path,
                    "reviews_<Cat>_5.json.gz (2014), <Cat>_5.json.gz (2018) or <Cat>.jsonl.gz "
                    "(2023); .gz optional")
        ->required();
    cmd->add_option(
        "--meta", amazon.meta_path,
        "meta_<Cat>.json.gz or meta_<Cat>.jsonl.gz; without it items.tsv has raw ids only");
    cmd->add_option("--out", out_dir, "output directory (created if missing)")->required();
    cmd->add_option("--k", amazon.k, "user and item core")
        ->check(CLI::Validator(
            [](std::string& v) -> std::string {
              char* end = nullptr;
              const long long k = std::strtoll(v.c_str(), &end, 10);
              if (end == v.c_str() || *end != '\0') return "";  // the INT conversion reports it
              return k >= 1 ? "" : "must be at least 1, got " + v;
            },
            ">=1"))
        ->capture_default_str();
    cmd->add_option("--format", format,
                    "line syntax and field names (auto: each file's first line decides the names)")
        ->check(CLI::IsMember({"auto", "2014", "2018", "2023"}))
        ->capture_default_str();
    cmd->add_flag("--drop-duplicates", amazon.drop_duplicates,
                  "keep only a user's earliest review of an item (S3-Rec keeps all)");

    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      const int rc = app.exit(e);
      return rc == 0 ? coco::kExitOk : coco::kExitUsage;
    }
    coco::set_log_level(log_level);
    amazon.format = coco::data::parse_amazon_format(format);
    return run_amazon(amazon, out_dir);
  });
}
