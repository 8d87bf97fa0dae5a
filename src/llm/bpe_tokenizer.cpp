// Byte-level BPE encode/decode. Merging follows Hugging Face tokenizers and llama.cpp: the
// adjacent pair of lowest rank merges first, the leftmost one among equals, with a heap over
// a linked list of symbols (O(n log n) per pre-token).
#include "bpe_tokenizer.h"

#include <algorithm>
#include <atomic>
#include <queue>

#include "coco/common/error.h"
#include "coco/common/log.h"

namespace coco::llm::bpe {

namespace {

uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

}  // namespace

void BpeTokenizer::Matcher::index() {
  by_first_byte.clear();
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i].content.empty()) continue;
    by_first_byte[static_cast<unsigned char>(tokens[i].content[0])].push_back(i);
  }
  for (auto& [byte, list] : by_first_byte) {
    std::stable_sort(list.begin(), list.end(), [&](size_t a, size_t b) {
      return tokens[a].content.size() > tokens[b].content.size();
    });
  }
}

BpeTokenizer::BpeTokenizer(BpeSpec spec) : spec_(std::move(spec)) {
  merges_.reserve(spec_.merges.size());
  for (size_t i = 0; i < spec_.merges.size(); ++i) {
    const auto& [a, b] = spec_.merges[i];
    const std::string where =
        spec_.source + ": " + spec_.merges_place + "[" + std::to_string(i) + "]";
    const int32_t left = bpe_id(a), right = bpe_id(b), merged = bpe_id(a + b);
    if (left < 0) throw ModelError(where + ": '" + a + "' is not a token of the vocabulary");
    if (right < 0) throw ModelError(where + ": '" + b + "' is not a token of the vocabulary");
    if (merged < 0)
      throw ModelError(where + ": the merged '" + a + b + "' is not a token of the vocabulary");
    // A repeated pair keeps its first (lowest) rank, as a map built in rank order does.
    merges_.emplace(pair_key(left, right), Merge{static_cast<int32_t>(i), merged});
  }
  for (const auto& t : spec_.added) {
    const bool normalized = t.normalized && !spec_.normalizer.empty();
    if (normalized) {
      AddedToken n = t;
      n.content = spec_.normalizer.apply(valid_utf8(t.content));
      normalized_matcher_.tokens.push_back(std::move(n));
    } else {
      raw_matcher_.tokens.push_back(t);
    }
  }
  raw_matcher_.index();
  normalized_matcher_.index();
}

const BpeTokenizer::Merge* BpeTokenizer::find_merge(int32_t left, int32_t right) const {
  if (left < 0 || right < 0) return nullptr;
  const auto it = merges_.find(pair_key(left, right));
  return it == merges_.end() ? nullptr : &it->second;
}

void BpeTokenizer::split_added(std::vector<Fragment>& fragments, const Matcher& matcher,
                               bool parse_special) const {
  if (matcher.tokens.empty()) return;
  std::vector<Fragment> out;
  for (auto& f : fragments) {
    if (f.token >= 0) {
      out.push_back(std::move(f));
      continue;
    }
    const std::string& text = f.text;
    size_t last = 0;  // start of the text not yet emitted
    for (size_t pos = 0; pos < text.size();) {
      const AddedToken* hit = nullptr;
      const auto list = matcher.by_first_byte.find(static_cast<unsigned char>(text[pos]));
      if (list != matcher.by_first_byte.end()) {
        for (size_t i : list->second) {  // longest first: leftmost-longest, as Hugging Face
          const AddedToken& t = matcher.tokens[i];
          if ((parse_special || !t.special) &&
              text.compare(pos, t.content.size(), t.content) == 0) {
            hit = &t;
            break;
          }
        }
      }
      if (!hit) {
        ++pos;
        continue;
      }
      size_t left_end = pos;
      if (hit->lstrip)
        while (left_end > last && is_space(text[left_end - 1])) --left_end;
      if (left_end > last) out.push_back({text.substr(last, left_end - last), -1});
      out.push_back({"", hit->id});
      pos += hit->content.size();
      if (hit->rstrip)
        while (pos < text.size() && is_space(text[pos])) ++pos;
      last = pos;
    }
    if (last < text.size()) out.push_back({text.substr(last), -1});
  }
  fragments = std::move(out);
}

int32_t BpeTokenizer::bpe_id(const std::string& symbol) const {
  const auto it = spec_.bpe_vocab.find(symbol);
  return it == spec_.bpe_vocab.end() ? -1 : it->second;
}

// One symbol of a word being merged: a doubly linked list over the word's bytes.
struct BpeTokenizer::Symbol {
  int32_t id;          // -1: not in the vocabulary
  int32_t prev, next;  // neighbours, -1 at the ends
  size_t begin, len;   // bytes of the word; len 0 once merged into its left neighbour
};

std::vector<BpeTokenizer::Symbol> BpeTokenizer::characters(const std::string& word) const {
  std::vector<Symbol> syms;
  for (size_t pos = 0; pos < word.size();) {
    const size_t len =
        std::min(utf8_length(static_cast<unsigned char>(word[pos])), word.size() - pos);
    const int32_t n = static_cast<int32_t>(syms.size());
    syms.push_back({bpe_id(word.substr(pos, len)), n - 1, -1, pos, len});
    if (n > 0) syms[static_cast<size_t>(n - 1)].next = n;
    pos += len;
  }
  return syms;
}

void BpeTokenizer::merge(std::vector<Symbol>& syms) const {
  struct Candidate {
    int32_t rank, left, right, left_id, right_id, merged;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : left > o.left;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
  const auto consider = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = syms[static_cast<size_t>(left)];
    const Symbol& r = syms[static_cast<size_t>(right)];
    if (const Merge* m = find_merge(l.id, r.id))
      heap.push({m->rank, left, right, l.id, r.id, m->id});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(syms.size()); ++i) consider(i, i + 1);
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    Symbol& l = syms[static_cast<size_t>(c.left)];
    Symbol& r = syms[static_cast<size_t>(c.right)];
    // Stale when either side has merged since (its id or its neighbour changed).
    if (r.len == 0 || l.len == 0 || l.next != c.right || l.id != c.left_id || r.id != c.right_id)
      continue;
    l.id = c.merged;
    l.len += r.len;
    l.next = r.next;
    r.len = 0;
    if (r.next >= 0) syms[static_cast<size_t>(r.next)].prev = c.left;
    consider(l.prev, c.left);
    consider(c.left, l.next);
  }
}

void BpeTokenizer::emit(const std::string& word, const std::vector<Symbol>& syms,
                        std::vector<int64_t>& out) const {
  for (int32_t i = syms.empty() ? -1 : 0; i >= 0; i = syms[static_cast<size_t>(i)].next) {
    const Symbol& s = syms[static_cast<size_t>(i)];
    if (s.id >= 0) {
      out.push_back(s.id);
    } else if (spec_.unk >= 0) {
      out.push_back(spec_.unk);
    } else {
      // Both reference implementations drop a character the vocabulary lacks; say so once.
      static std::atomic<bool> warned{false};
      if (!warned.exchange(true)) {
        log().warn("[llm] {}: '{}' is not in the vocabulary and there is no unknown token; dropped",
                   spec_.source, word.substr(s.begin, s.len));
      }
    }
  }
}

void BpeTokenizer::encode_word(const std::string& word, std::vector<int64_t>& out) const {
  if (spec_.ignore_merges) {
    if (const int32_t id = bpe_id(word); id >= 0) {
      out.push_back(id);
      return;
    }
  }
  std::vector<Symbol> syms = characters(word);
  merge(syms);
  emit(word, syms, out);
}

std::vector<int64_t> BpeTokenizer::encode(const std::string& text, bool parse_special) const {
  std::vector<Fragment> fragments;
  fragments.push_back({valid_utf8(text), -1});
  split_added(fragments, raw_matcher_, parse_special);
  if (!spec_.normalizer.empty()) {
    for (auto& f : fragments)
      if (f.token < 0) f.text = spec_.normalizer.apply(f.text);
    split_added(fragments, normalized_matcher_, parse_special);
  }
  std::vector<int64_t> ids;
  for (const auto& f : fragments) {
    if (f.token >= 0) {
      ids.push_back(f.token);
      continue;
    }
    for (const auto& word : spec_.pre_tokenizer.split(f.text)) encode_word(word, ids);
  }
  return ids;
}

std::string BpeTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string out;
  const int64_t n = vocab_size();
  for (int64_t id : ids) {
    if (id < 0 || id >= n)
      throw ModelError("cannot decode token id " + std::to_string(id) + " (vocabulary of " +
                       std::to_string(n) + ")");
    const std::string& text = spec_.tokens[static_cast<size_t>(id)];
    switch (spec_.kinds[static_cast<size_t>(id)]) {
      case TokenKind::kUserDefined:
        out += text;
        break;
      case TokenKind::kNormal: {
        std::string bytes;
        bool mapped = true;
        for (size_t pos = 0; pos < text.size() && mapped;) {
          const size_t len =
              std::min(utf8_length(static_cast<unsigned char>(text[pos])), text.size() - pos);
          const int b = char_to_byte(std::string_view(text).substr(pos, len));
          mapped = b >= 0;
          bytes += static_cast<char>(b);
          pos += len;
        }
        out += mapped ? bytes : text;  // a token outside the byte map stands for itself
        break;
      }
      default:
        break;
    }
  }
  return out;
}

}  // namespace coco::llm::bpe
