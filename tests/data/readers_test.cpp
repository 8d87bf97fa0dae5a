// Data readers: good files load exactly; every malformed input fails with one line
// naming file, line and problem.
#include "coco/data/readers.h"

#include <gtest/gtest.h>

#include "coco/common/error.h"
#include "test_util.h"

namespace coco {
namespace {

const char* kItems =
    "item_id\traw_id\ttitle\tbrand\tcategories\n"
    "1\tA1\tRed lipstick\tOPI\tMakeup | Lips\n"
    "2\tA2\tBlue nail polish\t\tMakeup | Nails\n"
    "3\tA3\tShampoo\tAcme\tHair\n"
    "4\tA4\tSoap\t\t\n";

TEST(Readers, UniformFormatLoads) {
  test::TempDir dir;
  const auto items = dir.write("items.tsv", kItems);
  const auto seqs = dir.write("sequences.txt", "1 1 2 3\n2 4 3 2 1\n");
  const auto cat = read_items_tsv(items);
  ASSERT_EQ(cat.size(), 4);
  EXPECT_EQ(cat.title[1], "Blue nail polish");
  EXPECT_EQ(cat.brand[0], "OPI");
  EXPECT_EQ(cat.categories[3], "");
  const auto data = read_sequences_txt(seqs, cat.size(), 3);
  ASSERT_EQ(data.num_users(), 2);
  EXPECT_EQ(data.length(1), 4);
  EXPECT_EQ(std::vector<int32_t>(data.begin(1), data.begin(1) + 4),
            (std::vector<int32_t>{4, 3, 2, 1}));
}

TEST(Readers, ItemsTsvColumnsInAnyOrderWithFeaturesAndDescription) {
  test::TempDir dir;
  const auto cat = read_items_tsv(
      dir.write("items.tsv",
                "item_id\tdescription\ttitle\tfeatures\textra\n1\tGentle.\tSoap\tVegan | 100 g\tz\n"
                "2\t\tComb\t\tz\n"));
  ASSERT_EQ(cat.size(), 2);
  EXPECT_EQ(cat.title[0], "Soap");
  EXPECT_EQ(cat.features[0], "Vegan | 100 g");
  EXPECT_EQ(cat.description[0], "Gentle.");
  EXPECT_EQ(cat.description[1], "");
  EXPECT_EQ(cat.brand[1], "");  // absent columns are empty, one entry per item
  EXPECT_EQ(cat.raw_id.size(), 2u);
}

struct BadSequences {
  const char* contents;
  const char* message;  // after "<file>:"
};

TEST(Readers, MalformedSequencesGetExactMessages) {
  const BadSequences cases[] = {
      {"", " empty file (expected one line per user: 'user_id item_id ...')"},
      {"1 1 2 3\n2 4 3", "2: file ends in the middle of a line (truncated?)"},
      {"1 1 2 3\n2 4 x3 1\n", "2: item id 'x3' (token 3) is not a positive integer"},
      {"1 1 2 3\n2 4 5 1\n", "2: item id 5 is out of range 1..4 (the number of rows in items.tsv)"},
      {"1 1 2 3\n1 4 3 1\n", "2: duplicate user 1 (already on line 1)"},
      {"1 1 2 3\n3 4 3 1\n", "2: expected user id 2 (users are numbered 1..U in order), got 3"},
      {"1 1 2\n", "1: user 1 has 2 items; leave-one-out needs at least 3"},
      {"1 1 2 3\n\n", "2: empty line"},
      {"u1 1 2 3\n", "1: user id 'u1' is not a positive integer"},
  };
  for (const auto& c : cases) {
    test::TempDir dir;
    const auto file = dir.write("sequences.txt", c.contents);
    EXPECT_EQ(test::error_text<DataError>([&] { read_sequences_txt(file, 4, 3); }),
              file + ":" + c.message)
        << c.contents;
  }
}

TEST(Readers, MalformedItemsGetExactMessages) {
  const BadSequences cases[] = {
      {"", " empty file (expected a header and one row per item)"},
      {"item_id\traw_id\ttitle\n1\tA1\n", "2: expected 3 tab-separated columns, got 2"},
      {"item_id\traw_id\ttitle\n2\tA1\tx\n",
       "2: expected item_id 1 (rows must list ids 1..N in order), got 2"},
      {"item_id\traw_id\ttitle\n1\tA1\tbad \xC3\x28 text\n",
       "2: invalid UTF-8 in column 'title' at byte 4"},
      {"id\ttitle\n1\tx\n",
       "1: header must start with column 'item_id' (expected item_id, raw_id, title, "
       "brand, categories separated by tabs)"},
  };
  for (const auto& c : cases) {
    test::TempDir dir;
    const auto file = dir.write("items.tsv", c.contents);
    EXPECT_EQ(test::error_text<DataError>([&] { read_items_tsv(file); }), file + ":" + c.message)
        << c.contents;
  }
}

TEST(Readers, RecBoleAtomicFilesSortByTimeAndMapTokens) {
  test::TempDir dir;
  dir.write("toy.item",
            "item_id:token\tmovie_title:token_seq\tclass:token_seq\n"
            "m10\tAlien\tHorror Sci-Fi\nm20\tBambi\tAnimation\nm30\tCars\tAnimation\n");
  dir.write("toy.inter",
            "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
            "u7\tm30\t5\t300\nu7\tm10\t3\t100\nu9\tm20\t4\t50\nu7\tm20\t1\t200\n"
            "u9\tm10\t2\t60\nu9\tm30\t2\t70\n");
  DataOptions opt;
  opt.name = "toy";
  opt.format = DataFormat::kRecBole;
  const Dataset ds = read_recbole(dir.path(), "toy", opt);
  ASSERT_EQ(ds.interactions.num_users(), 2);
  EXPECT_EQ(ds.user_raw_ids, (std::vector<std::string>{"u7", "u9"}));
  EXPECT_EQ(std::vector<int32_t>(ds.interactions.begin(0), ds.interactions.begin(0) + 3),
            (std::vector<int32_t>{1, 2, 3}));  // m10 (t=100), m20 (200), m30 (300)
  EXPECT_EQ(std::vector<int32_t>(ds.interactions.begin(1), ds.interactions.begin(1) + 3),
            (std::vector<int32_t>{2, 1, 3}));
  EXPECT_EQ(ds.catalog.title[1], "Bambi");
  EXPECT_EQ(ds.catalog.categories[0], "Horror | Sci-Fi");
}

TEST(Readers, RecBoleUnknownItemAndBadTimestamp) {
  test::TempDir dir;
  dir.write("toy.item", "item_id:token\ttitle:token_seq\nm10\tAlien\n");
  const auto inter =
      dir.write("toy.inter", "user_id:token\titem_id:token\ttimestamp:float\nu1\tm99\t5\n");
  DataOptions opt;
  opt.name = "toy";
  EXPECT_EQ(test::error_text<DataError>([&] { read_recbole(dir.path(), "toy", opt); }),
            inter + ":2: item 'm99' is not in toy.item");
  dir.write("toy.inter", "user_id:token\titem_id:token\ttimestamp:float\nu1\tm10\tsoon\n");
  EXPECT_EQ(test::error_text<DataError>([&] { read_recbole(dir.path(), "toy", opt); }),
            inter + ":2: timestamp 'soon' is not a number");
}

TEST(Readers, MissingDatasetListsWhereItLooked) {
  DataOptions opt;
  opt.name = "no-such-data";
  const std::string msg = test::error_text<DataError>([&] { locate_dataset(opt, "configs"); });
  EXPECT_NE(
      msg.find("dataset 'no-such-data' not found; looked for data/no-such-data/sequences.txt"),
      std::string::npos)
      << msg;
  EXPECT_NE(msg.find("shared/data/no-such-data/sequences.txt"), std::string::npos) << msg;
}

TEST(Readers, RealBeautyMatchesPublishedStatistics) {
  const std::string dir = test::shared_dataset("amazon-beauty");
  if (dir.empty()) GTEST_SKIP() << "../shared/data/amazon-beauty not present";
  DataOptions opt;
  opt.name = "amazon-beauty";
  opt.path = dir;
  const Dataset ds = load_dataset(opt, ".");
  EXPECT_EQ(ds.interactions.num_users(), 22363);
  EXPECT_EQ(ds.interactions.num_items, 12101);
  EXPECT_EQ(ds.interactions.items.size(), 198502u);
  EXPECT_EQ(ds.catalog.title[0], "OPI Nail Lacquer, Simmer and Shimmer, 0.5-Fluid Ounce");
}

}  // namespace
}  // namespace coco
