// Tests of the raw Amazon converter: small dumps written (and gzipped with zlib) into a
// temporary directory, exact sequences.txt / items.tsv contents, exact error lines.
// Expected outputs are worked out by hand from S3-Rec's data_process.py rules.
#include "coco/data/amazon_raw.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "coco/common/error.h"

namespace coco::data {
namespace {

namespace fs = std::filesystem;

class AmazonRawTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("coco_amazon_raw_" + std::string(info->name()) + "_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  static std::string join(const std::vector<std::string>& lines) {
    std::string s;
    for (const auto& l : lines) s += l + "\n";
    return s;
  }

  std::string write_gz(const std::string& name, const std::string& content) const {
    const std::string p = path(name);
    gzFile f = gzopen(p.c_str(), "wb");
    EXPECT_NE(f, nullptr);
    EXPECT_EQ(gzwrite(f, content.data(), static_cast<unsigned>(content.size())),
              static_cast<int>(content.size()));
    EXPECT_EQ(gzclose(f), Z_OK);
    return p;
  }

  std::string write_plain(const std::string& name, const std::string& content) const {
    const std::string p = path(name);
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }

  static std::string read(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  // Converts, writes to <dir>/out and returns {sequences.txt, items.tsv}.
  std::pair<std::string, std::string> run(const std::string& reviews, const std::string& meta,
                                          int64_t k, AmazonFormat format = AmazonFormat::kAuto,
                                          bool drop_duplicates = false) {
    AmazonRawOptions o;
    o.reviews_path = reviews;
    o.meta_path = meta;
    o.k = k;
    o.format = format;
    o.drop_duplicates = drop_duplicates;
    last_ = convert_amazon_raw(o);
    write_uniform_dataset(last_, path("out"));
    return {read(path("out/sequences.txt")), read(path("out/items.tsv"))};
  }

  // The DataError text of converting these files (empty if nothing was thrown).
  static std::string error_of(const std::string& reviews, const std::string& meta, int64_t k,
                              AmazonFormat format = AmazonFormat::kAuto) {
    AmazonRawOptions o;
    o.reviews_path = reviews;
    o.meta_path = meta;
    o.k = k;
    o.format = format;
    try {
      convert_amazon_raw(o);
    } catch (const DataError& e) {
      return e.what();
    }
    return "";
  }

  static std::string review(const std::string& user, const std::string& item, int64_t time) {
    return R"({"reviewerID": ")" + user + R"(", "asin": ")" + item +
           R"(", "reviewerName": "x", "helpful": [0, 0], "reviewText": "ok", "overall": 5.0, )"
           R"("summary": "s", "unixReviewTime": )" +
           std::to_string(time) + R"(, "reviewTime": "01 1, 2014"})";
  }

  static constexpr const char* kHeader = "item_id\traw_id\ttitle\tbrand\tcategories\n";

  fs::path dir_;
  AmazonDataset last_;
};

// Users are numbered in order of first appearance in the file, items in order of first
// appearance walking those users' chronological sequences; ties keep file order.
TEST_F(AmazonRawTest, NumbersByFirstAppearanceAndSortsStably) {
  const auto reviews =
      write_gz("r.json.gz", join({
                                review("UB", "p3", 300), review("UA", "p1", 200),
                                review("UB", "p2", 100), review("UA", "p2", 200),  // tie with p1
                                review("UA", "p3", 50), review("UB", "p1", 300),   // tie with p3
                            }));
  const auto [seq, items] = run(reviews, "", 1);
  // UB (first in file) = user 1: p2@100, p3@300, p1@300 -> items 1, 2, 3.
  // UA = user 2: p3@50, p1@200, p2@200 -> 2, 3, 1.
  EXPECT_EQ(seq, "1 1 2 3\n2 2 3 1\n");
  EXPECT_EQ(items, std::string(kHeader) + "1\tp2\t\t\t\n2\tp3\t\t\t\n3\tp1\t\t\t\n");
  EXPECT_EQ(last_.user_raw_ids, (std::vector<std::string>{"UB", "UA"}));
  EXPECT_EQ(last_.num_interactions, 6);
  EXPECT_EQ(last_.kcore_passes, 0);
}

// k = 2. Dropping item d shrinks U4, dropping U4 starves item c, which shrinks U3, which is
// dropped in turn: four passes, where a single pass would keep U3 and U4.
TEST_F(AmazonRawTest, IterativeKCoreNeedsSeveralPasses) {
  const auto reviews = write_gz("r.json.gz", join({
                                                 review("U3", "b", 1),
                                                 review("U3", "c", 2),
                                                 review("U1", "a", 1),
                                                 review("U1", "b", 2),
                                                 review("U4", "c", 1),
                                                 review("U4", "d", 2),
                                                 review("U2", "b", 5),
                                                 review("U2", "a", 6),
                                             }));
  const auto [seq, items] = run(reviews, "", 2);
  // Survivors U1 (a, b) and U2 (b, a), numbered in file order of first appearance.
  EXPECT_EQ(seq, "1 1 2\n2 2 1\n");
  EXPECT_EQ(items, std::string(kHeader) + "1\ta\t\t\t\n2\tb\t\t\t\n");
  EXPECT_EQ(last_.kcore_passes, 4);
  EXPECT_EQ(last_.user_raw_ids, (std::vector<std::string>{"U1", "U2"}));
}

TEST_F(AmazonRawTest, DuplicatesKeptUnlessDropped) {
  const std::string lines = join({review("U", "a", 1), review("U", "b", 2), review("U", "a", 3),
                                  review("V", "a", 1), review("V", "b", 1)});
  const auto reviews = write_gz("r.json.gz", lines);
  EXPECT_EQ(run(reviews, "", 2).first, "1 1 2 1\n2 1 2\n");
  EXPECT_EQ(last_.num_interactions, 5);
  EXPECT_EQ(run(reviews, "", 2, AmazonFormat::kAuto, true).first, "1 1 2\n2 1 2\n");
  EXPECT_EQ(last_.duplicates_dropped, 1);
}

// Duplicates count towards the core, as S3-Rec counts list entries: U has 2 entries.
TEST_F(AmazonRawTest, DuplicatesCountTowardsTheCore) {
  const auto reviews =
      write_gz("r.json.gz", join({review("U", "a", 1), review("U", "a", 2), review("V", "b", 1)}));
  EXPECT_EQ(run(reviews, "", 2).first, "1 1 1\n");
}

// 2014: strict-JSON reviews and Python-literal metadata with escapes, categories paths.
TEST_F(AmazonRawTest, Format2014MetadataLiterals) {
  const auto reviews =
      write_gz("reviews_Beauty_5.json.gz", join({review("U", "A1", 1), review("U", "A2", 2),
                                                 review("U", "A3", 3), review("U", "A4", 4)}));
  const auto meta = write_gz(
      "meta_Beauty.json.gz",
      join({
          R"({'asin': 'A9', 'title': 'not in the data'})",
          R"({'asin': 'A2', 'title': "Crabtree &amp; Evelyn - Gardener's \"Ultra\"\tHand  Therapy", )"
          R"('price': 12.5, 'salesRank': {'Beauty': 1234L}, 'related': {'also_bought': ['X', 'Y']}, )"
          R"('categories': [['Beauty', 'Skin Care', 'Hands &amp; Nails'], ['Beauty', 'Skin Care', 'Hand Creams'], ['Beauty']], 'brand': 'Crabtree &#38; Evelyn'})",
          R"({'asin': 'A1', 'title': 'Caf\xc3\xa9 \'Noir\' \\ 100\u00b0 \U0001F600', 'brand': u'Cr\xe8me', 'imUrl': None, 'x': True})",
          R"({'asin': 'A3', 'title': 'Latin-1 Caf\xe9', 'categories': []})",
          R"({'asin': 'A1', 'title': 'second line for A1 is ignored'})",
      }));
  const auto [seq, items] = run(reviews, meta, 1, AmazonFormat::k2014);
  EXPECT_EQ(seq, "1 1 2 3 4\n");
  EXPECT_EQ(items, std::string(kHeader) +
                       "1\tA1\tCaf\xC3\xA9 'Noir' \\ 100\xC2\xB0 \xF0\x9F\x98\x80\tCr\xC3\xA8me\t\n"
                       "2\tA2\tCrabtree & Evelyn - Gardener's \"Ultra\" Hand Therapy\tCrabtree & "
                       "Evelyn\tSkin Care | Hands & Nails | Hand Creams\n"
                       "3\tA3\tLatin-1 Caf\xC3\xA9\t\t\n"
                       "4\tA4\t\t\t\n");
  EXPECT_EQ(last_.items_with_title, 3);
  EXPECT_EQ(last_.items_with_meta, 3);
}

// 2018: JSON lines both ways, 'category' as a flat list, JSON keywords.
TEST_F(AmazonRawTest, Format2018JsonMetadata) {
  const auto reviews = write_gz(
      "Beauty_5.json.gz",
      join(
          {R"({"overall": 5.0, "verified": true, "reviewTime": "09 1, 2016", "reviewerID": "U1", "asin": "B1", "style": {"Size:": " 7"}, "unixReviewTime": 1472688000})",
           R"({"overall": 4.0, "verified": false, "reviewerID": "U1", "asin": "B2", "unixReviewTime": 1472600000, "vote": "2"})"}));
  const auto meta = write_gz(
      "meta_Beauty.json.gz",
      join(
          {R"({"category": ["All Beauty", "Hair Care", "Shampoo &amp; Conditioner", "Hair Care"], "title": "A &lt;b&gt; title&#x21;\u00e9", "brand": "Br\n and", "also_buy": [], "price": "", "asin": "B1", "details": {"x": null}})",
           R"({"category": [], "title": "", "brand": "", "asin": "B2"})"}));
  const auto [seq, items] = run(reviews, meta, 1, AmazonFormat::k2018);
  EXPECT_EQ(seq, "1 1 2\n");
  EXPECT_EQ(items, std::string(kHeader) +
                       "1\tB2\t\t\t\n"
                       "2\tB1\tA <b> title!\xC3\xA9\tBr and\tHair Care | Shampoo & Conditioner\n");
  EXPECT_EQ(last_.items_with_title, 1);
}

// auto: each line may be JSON or a Python literal; plain (uncompressed) files work too.
TEST_F(AmazonRawTest, AutoFormatPerLineAndPlainFiles) {
  const auto reviews = write_plain(
      "reviews.json", join({review("U", "A1", 1), "",
                            R"({'reviewerID': 'U', 'asin': 'A2', 'unixReviewTime': '7'})"}));
  const auto meta = write_plain("meta.json",
                                "{'asin': 'A1', 'title': 'one'}\r\n"
                                "{\"asin\": \"A2\", \"title\": \"two\", \"x\": null}\r\n");
  const auto [seq, items] = run(reviews, meta, 1);
  EXPECT_EQ(seq, "1 1 2\n");
  EXPECT_EQ(items, std::string(kHeader) + "1\tA1\tone\t\t\n2\tA2\ttwo\t\t\n");
}

TEST_F(AmazonRawTest, CleanText) {
  EXPECT_EQ(clean_text("  a&amp;b &quot;c&quot; &#39;d&#39; &lt;e&gt;\t\n f\r\n  "),
            "a&b \"c\" 'd' <e> f");
  EXPECT_EQ(clean_text("&amp;amp; &#233;&#xE9;&#Xe9; &#0; &bogus; & no;"),
            "&amp; \xC3\xA9\xC3\xA9\xC3\xA9 &#0; &bogus; & no;");
  EXPECT_EQ(clean_text("a&#9;&#10;b&nbsp;&nbsp;c"), "a b c");
  EXPECT_EQ(clean_text(""), "");
}

// A tiny known case: the first two users of the S3-Rec Beauty release
// (shared/data/amazon-beauty: "1 1 2 3 4 5" / "2 6 7 8 9 10 4 11", ASINs from
// datamaps.json, title of item 1 from items.tsv), rebuilt by hand from a shuffled dump
// with invented day-resolution times. Items 1 and 2 share a day: file order decides.
TEST_F(AmazonRawTest, ReproducesFirstBeautyUsersByHand) {
  const std::string u1 = "A1YJEY40YUW4SE", u2 = "A60XNB876KYML";
  const auto reviews =
      write_gz("reviews_Beauty_5.json.gz", join({
                                               review(u1, "B004756YJA", 1300000000),  // item 1
                                               review(u2, "B0009P4PZC", 1200000000),  // item 6
                                               review(u1, "B002WLWX82", 1400000000),  // item 5
                                               review(u2, "B00812ZWOS", 1350000000),  // item 10
                                               review(u1, "B004ZT0SSG", 1300000000),  // item 2
                                               review(u2, "B0000YUX4O", 1390000000),  // item 11
                                               review(u1, "B0020YLEYK", 1310000000),  // item 3
                                               review(u2, "B009HULFLW", 1210000000),  // item 7
                                               review(u1, "7806397051", 1320000000),  // item 4
                                               review(u2, "B00BZ1QN2C", 1220000000),  // item 8
                                               review(u2, "7806397051", 1360000000),  // item 4
                                               review(u2, "B00G2TQNZ4", 1230000000),  // item 9
                                           }));
  const auto meta = write_gz(
      "meta_Beauty.json.gz",
      join(
          {R"({'asin': 'B004756YJA', 'title': 'OPI Nail Lacquer, Simmer and Shimmer, 0.5-Fluid Ounce', 'brand': 'OPI', 'categories': [['Beauty', 'Makeup', 'Nails', 'Nail Polish']]})"}));
  const auto [seq, items] = run(reviews, meta, 1, AmazonFormat::k2014);
  EXPECT_EQ(seq, "1 1 2 3 4 5\n2 6 7 8 9 10 4 11\n");
  const std::vector<std::string> asins = {"B004756YJA", "B004ZT0SSG", "B0020YLEYK", "7806397051",
                                          "B002WLWX82", "B0009P4PZC", "B009HULFLW", "B00BZ1QN2C",
                                          "B00G2TQNZ4", "B00812ZWOS", "B0000YUX4O"};
  std::string expected = std::string(kHeader) +
                         "1\tB004756YJA\tOPI Nail Lacquer, Simmer and Shimmer, 0.5-Fluid "
                         "Ounce\tOPI\tMakeup | Nails | Nail Polish\n";
  for (size_t i = 1; i < asins.size(); ++i) {
    expected += std::to_string(i + 1) + "\t" + asins[i] + "\t\t\t\n";
  }
  EXPECT_EQ(items, expected);
  EXPECT_EQ(last_.user_raw_ids, (std::vector<std::string>{u1, u2}));
}

TEST_F(AmazonRawTest, OutputIsReplacedAtomically) {
  const auto reviews = write_gz("r.json.gz", join({review("U", "a", 1)}));
  run(reviews, "", 1);
  run(reviews, "", 1);  // overwrite
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(path("out"))) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"items.tsv", "sequences.txt"}));
}

// ------------------------------------------------------------------------ errors

TEST_F(AmazonRawTest, ErrorInvalidJsonNamesLineAndColumn) {
  const auto r =
      write_gz("r.json.gz", join({review("U", "a", 1), R"({"reviewerID": "U", "asin" "a"})"}));
  EXPECT_EQ(error_of(r, "", 1, AmazonFormat::k2018),
            r + ":2: invalid JSON at column 28: expected ':' after a key");
  EXPECT_EQ(error_of(r, "", 1),
            r + ":2: invalid JSON/Python literal at column 28: expected ':' after a key");
  const auto r2 = write_gz("r2.json.gz", "{'reviewerID': 'U'}\n");
  EXPECT_EQ(error_of(r2, "", 1, AmazonFormat::k2014),
            r2 + ":1: invalid JSON at column 2: expected a string key");
  const auto r3 = write_gz("r3.json.gz", "[1, 2]\n");
  EXPECT_EQ(error_of(r3, "", 1), r3 + ":1: expected an object ({...}) on the line");
  const auto r4 = write_gz("r4.json.gz", R"({"reviewerID": "U", "asin": "a", "t": "x)"
                                         "\n");
  EXPECT_EQ(error_of(r4, "", 1),
            r4 + ":1: invalid JSON/Python literal at column 39: unterminated string");
}

TEST_F(AmazonRawTest, ErrorMissingAndBadFields) {
  const auto r = write_gz("r.json.gz", join({review("U", "a", 1), review("U", "b", 2),
                                             R"({"reviewerID": "U", "unixReviewTime": 5})"}));
  EXPECT_EQ(error_of(r, "", 1), r + ":3: missing field 'asin'");
  const auto r2 =
      write_gz("r2.json.gz", R"({"reviewerID": "U", "asin": "a", "unixReviewTime": "soon"})"
                             "\n");
  EXPECT_EQ(error_of(r2, "", 1), r2 + ":1: non-numeric unixReviewTime \"soon\"");
  const auto r3 =
      write_gz("r3.json.gz", R"({"reviewerID": "U", "asin": "a b", "unixReviewTime": 1})"
                             "\n");
  EXPECT_EQ(error_of(r3, "", 1), r3 + ":1: field 'asin' contains whitespace or control characters");
  const auto r4 = write_gz("r4.json.gz", R"({"reviewerID": 7, "asin": "a", "unixReviewTime": 1})"
                                         "\n");
  EXPECT_EQ(error_of(r4, "", 1), r4 + ":1: field 'reviewerID' is not a string");
  const auto r5 =
      write_gz("r5.json.gz", R"({"reviewerID": "U", "asin": "a", "unixReviewTime": null})"
                             "\n");
  EXPECT_EQ(error_of(r5, "", 1), r5 + ":1: non-numeric unixReviewTime (not a number or string)");
}

TEST_F(AmazonRawTest, ErrorInvalidUtf8InText) {
  const auto r = write_gz("r.json.gz", join({review("U", "a", 1)}));
  const auto m = write_gz("m.json.gz", join({"{'asin': 'zzz', 'title': 'fine'}",
                                             "{'asin': 'a', 'title': 'bad \xFF byte'}"}));
  EXPECT_EQ(error_of(r, m, 1), m + ":2: invalid UTF-8 in field 'title'");
  const auto m2 =
      write_gz("m2.json.gz", "{'asin': 'a', 'categories': [['Root', 'ok', 'bad \xC3']]}\n");
  EXPECT_EQ(error_of(r, m2, 1), m2 + ":1: invalid UTF-8 in field 'categories'");
  const auto m3 = write_gz("m3.json.gz", "{\"asin\": \"a\", \"title\": \"\\ud800 x\"}\n");
  EXPECT_EQ(error_of(r, m3, 1, AmazonFormat::k2018),
            m3 + ":1: invalid JSON at column 25: invalid code point in an escape");
}

TEST_F(AmazonRawTest, ErrorMetadataSyntaxMismatch) {
  const auto r = write_gz("r.json.gz", join({review("U", "a", 1)}));
  const auto m = write_gz("m.json.gz", "{'asin': 'a'}\n");
  EXPECT_EQ(error_of(r, m, 1, AmazonFormat::k2018),
            m + ":1: invalid JSON at column 2: expected a string key");
  const auto m2 = write_gz("m2.json.gz", "{\"asin\": \"a\", \"x\": true}\n");
  EXPECT_EQ(error_of(r, m2, 1, AmazonFormat::k2014),
            m2 + ":1: invalid Python literal at column 20: unexpected character 't'");
}

TEST_F(AmazonRawTest, ErrorTruncatedAndCorruptGzip) {
  std::string lines;
  for (int i = 0; i < 2000; ++i) lines += review("U" + std::to_string(i % 50), "a", i) + "\n";
  const std::string whole = read(write_gz("whole.json.gz", lines));
  const auto truncated = write_plain("t.json.gz", whole.substr(0, whole.size() / 2));
  // The error names the line the data broke off in, after the complete lines before it.
  const std::string err = error_of(truncated, "", 1);
  EXPECT_EQ(err.rfind(truncated + ":", 0), 0u) << err;
  const std::string tail = ": gzip data corrupt or truncated (unexpected end of file)";
  ASSERT_GT(err.size(), tail.size()) << err;
  EXPECT_EQ(err.substr(err.size() - tail.size()), tail) << err;
  const int64_t line = std::stoll(err.substr(truncated.size() + 1));
  EXPECT_GT(line, 100) << err;
  EXPECT_LT(line, 2001) << err;

  // A wrong CRC-32 in the trailer: every line decompresses, the check fails at the end.
  std::string bad = whole;
  bad[bad.size() - 8] = static_cast<char>(~bad[bad.size() - 8]);
  const auto corrupt = write_plain("c.json.gz", bad);
  const std::string err2 = error_of(corrupt, "", 1);
  EXPECT_EQ(err2.rfind(corrupt + ":", 0), 0u) << err2;
  const std::string tail2 = ": gzip data corrupt or truncated (incorrect data check)";
  ASSERT_GT(err2.size(), tail2.size()) << err2;
  EXPECT_EQ(err2.substr(err2.size() - tail2.size()), tail2) << err2;
  EXPECT_EQ(err2, corrupt + ":2001: gzip data corrupt or truncated (incorrect data check)");
}

TEST_F(AmazonRawTest, ErrorEmptyAfterKCoreAndMissingFile) {
  const auto r = write_gz("r.json.gz", join({review("U", "a", 1), review("V", "b", 1)}));
  EXPECT_EQ(error_of(r, "", 2),
            r + ": no interactions left after 2-core filtering (2 reviews, 2 users, 2 items read)");
  const auto empty = write_gz("e.json.gz", "");
  EXPECT_EQ(error_of(empty, "", 5),
            empty +
                ": no interactions left after 5-core filtering (0 reviews, 0 users, 0 items "
                "read)");
  EXPECT_EQ(error_of(path("nope.json.gz"), "", 5),
            path("nope.json.gz") + ": cannot open: No such file or directory");
}

// A gzip member inflates a thousandfold: a line with no end is an error, not all of memory.
TEST_F(AmazonRawTest, ErrorLineLongerThanTheLimit) {
  const std::string line = review("U1", "A1", 1) + "\n" + std::string((64 << 20) + 1, ' ');
  const auto r = write_gz("long.json.gz", line);
  EXPECT_LT(fs::file_size(r), 1u << 20);
  EXPECT_EQ(error_of(r, "", 1), r + ":2: line longer than 64 MiB (not a review or metadata dump?)");
}

TEST_F(AmazonRawTest, FormatNames) {
  EXPECT_EQ(parse_amazon_format("2014"), AmazonFormat::k2014);
  EXPECT_EQ(parse_amazon_format("2018"), AmazonFormat::k2018);
  EXPECT_EQ(parse_amazon_format("auto"), AmazonFormat::kAuto);
  EXPECT_EQ(parse_amazon_format("2023"), AmazonFormat::k2023);
  EXPECT_THROW(parse_amazon_format("2024"), coco::Error);
}

// Amazon Reviews 2023 (user_id, parent_asin, timestamp in ms; metadata with store,
// features and description lists) gives the same files as the same sample in the 2018
// syntax (reviewerID, asin, unixReviewTime in s; brand, feature, description).
TEST_F(AmazonRawTest, Reviews2023GiveTheSameFilesAsThe2018Sample) {
  struct R {
    const char *user, *item;
    int64_t seconds;
  };
  const std::vector<R> rs = {{"UA", "P1", 30}, {"UB", "P2", 10}, {"UA", "P2", 20},
                             {"UB", "P1", 40}, {"UA", "P3", 50}, {"UB", "P3", 5}};
  std::vector<std::string> r2018, r2023;
  for (const auto& r : rs) {
    r2018.push_back(std::string(R"({"overall": 5.0, "reviewerID": ")") + r.user +
                    R"(", "asin": ")" + r.item + R"(", "unixReviewTime": )" +
                    std::to_string(r.seconds) + "}");
    r2023.push_back(std::string(R"({"rating": 5.0, "title": "t", "text": "x", "images": [], )") +
                    R"("asin": ")" + r.item + R"(v", "parent_asin": ")" + r.item +
                    R"(", "user_id": ")" + r.user + R"(", "timestamp": )" +
                    std::to_string(r.seconds * 1000) +
                    R"(, "helpful_vote": 0, "verified_purchase": true})");
  }
  const std::vector<std::string> m2018 = {
      R"({"asin": "P1", "title": "Rose &amp; Oud Soap", "brand": "Acme", "category": ["Beauty", "Bath"], "feature": ["Vegan", "", "100 g"], "description": ["Gentle.", "Made in France."]})",
      R"({"asin": "P2", "title": "Comb", "brand": "", "category": [], "feature": [], "description": []})",
      R"({"asin": "P3", "title": "Brush", "category": ["Beauty", "Tools", "Brushes"]})"};
  const std::vector<std::string> m2023 = {
      R"({"main_category": "All Beauty", "title": "Rose &amp; Oud Soap", "average_rating": 4.5, "rating_number": 10, "features": ["Vegan", "", "100 g"], "description": ["Gentle.", "Made in France."], "price": null, "images": [], "videos": [], "store": "Acme", "categories": ["Beauty", "Bath"], "details": {"Brand": "Acme"}, "parent_asin": "P1"})",
      R"({"main_category": "All Beauty", "title": "Comb", "features": [], "description": [], "store": null, "categories": [], "parent_asin": "P2"})",
      R"({"main_category": "All Beauty", "title": "Brush", "features": [], "description": [], "store": "", "categories": ["Beauty", "Tools", "Brushes"], "parent_asin": "P3"})"};
  const auto old_files = run(write_gz("r2018.json.gz", join(r2018)),
                             write_gz("m2018.json.gz", join(m2018)), 1, AmazonFormat::k2018);
  for (const auto format : {AmazonFormat::k2023, AmazonFormat::kAuto}) {
    const auto new_files = run(write_gz("All_Beauty.jsonl.gz", join(r2023)),
                               write_plain("meta_All_Beauty.jsonl", join(m2023)), 1, format);
    EXPECT_EQ(new_files, old_files);
  }
  // UA: P1@30, P2@20, P3@50 -> P2, P1, P3; UB: P3@5, P2@10, P1@40.
  EXPECT_EQ(old_files.first, "1 1 2 3\n2 3 1 2\n");
  EXPECT_EQ(old_files.second,
            "item_id\traw_id\ttitle\tbrand\tcategories\tfeatures\tdescription\n"
            "1\tP2\tComb\t\t\t\t\n"
            "2\tP1\tRose & Oud Soap\tAcme\tBath\tVegan | 100 g\tGentle. Made in France.\n"
            "3\tP3\tBrush\t\tTools | Brushes\t\t\n");
}

TEST_F(AmazonRawTest, Reviews2023ErrorsNameTheFileAndLine) {
  const std::string good =
      R"({"rating": 5.0, "asin": "a1", "parent_asin": "P1", "user_id": "U1", "timestamp": 1000})";
  const auto no_parent = write_plain(
      "a.jsonl", join({good, R"({"rating": 5.0, "asin": "a1", "user_id": "U2", "timestamp": 1})"}));
  EXPECT_EQ(error_of(no_parent, "", 1), no_parent + ":2: missing field 'parent_asin'");
  const auto bad_time = write_plain(
      "b.jsonl", join({good, R"({"parent_asin": "P1", "user_id": "U2", "timestamp": "soon"})"}));
  EXPECT_EQ(error_of(bad_time, "", 1), bad_time + ":2: non-numeric timestamp \"soon\"");
  // A 2018 line in a file the first line made 2023: the names, not a silent mix of units.
  const auto mixed = write_plain(
      "c.jsonl", join({good, R"({"reviewerID": "U2", "asin": "P1", "unixReviewTime": 5})"}));
  EXPECT_EQ(error_of(mixed, "", 1), mixed + ":2: missing field 'user_id'");
  const auto reviews = write_plain("d.jsonl", join({good}));
  const auto meta = write_plain(
      "m.jsonl", join({R"({"parent_asin": "P1", "title": "x", "features": "one", "store": 5})"}));
  EXPECT_EQ(error_of(reviews, meta, 1), meta + ":1: field 'store' is not a string");
  EXPECT_EQ(
      error_of(reviews,
               write_plain("m2.jsonl", join({R"({"parent_asin": "P1", "features": [1]})"})), 1),
      path("m2.jsonl") + ":1: field 'features' holds a non-string entry");
  EXPECT_EQ(error_of(reviews, meta, 1, AmazonFormat::k2018),
            reviews + ":1: missing field 'reviewerID'");
}

}  // namespace
}  // namespace coco::data
