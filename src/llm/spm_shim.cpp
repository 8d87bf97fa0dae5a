// libcoco_spm.so: wraps sentencepiece::SentencePieceProcessor behind the C functions of
// spm_shim.h. Links sentencepiece only, never libtorch; exceptions never cross the boundary.
#include "spm_shim.h"

#include <sentencepiece_processor.h>

#include <string>
#include <vector>

namespace {

sentencepiece::SentencePieceProcessor* cast(void* p) {
  return static_cast<sentencepiece::SentencePieceProcessor*>(p);
}

int report(const sentencepiece::util::Status& status, coco_spm_text_sink err, void* ctx) {
  if (status.ok()) return 0;
  const std::string msg = status.ToString();
  if (err) err(ctx, msg.data(), msg.size());
  return 1;
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) void* coco_spm_new(void) {
  try {
    return new sentencepiece::SentencePieceProcessor();
  } catch (...) {
    return nullptr;
  }
}

__attribute__((visibility("default"))) void coco_spm_delete(void* processor) {
  delete cast(processor);
}

__attribute__((visibility("default"))) int coco_spm_load_file(void* processor, const char* path,
                                                              coco_spm_text_sink err, void* ctx) {
  try {
    return report(cast(processor)->Load(path), err, ctx);
  } catch (...) {
    return 1;
  }
}

__attribute__((visibility("default"))) int coco_spm_load_proto(void* processor, const char* data,
                                                               size_t size, coco_spm_text_sink err,
                                                               void* ctx) {
  try {
    return report(cast(processor)->LoadFromSerializedProto(std::string(data, size)), err, ctx);
  } catch (...) {
    return 1;
  }
}

__attribute__((visibility("default"))) int coco_spm_encode(void* processor, const char* text,
                                                           size_t size, coco_spm_ids_sink out,
                                                           void* ctx) {
  try {
    std::vector<int> ids;
    if (!cast(processor)->Encode(std::string(text, size), &ids).ok()) return 1;
    std::vector<int32_t> ids32(ids.begin(), ids.end());
    out(ctx, ids32.data(), ids32.size());
    return 0;
  } catch (...) {
    return 1;
  }
}

__attribute__((visibility("default"))) int coco_spm_decode(void* processor, const int32_t* ids,
                                                           size_t count, coco_spm_text_sink out,
                                                           void* ctx) {
  try {
    std::vector<int> v(ids, ids + count);
    std::string text;
    if (!cast(processor)->Decode(v, &text).ok()) return 1;
    out(ctx, text.data(), text.size());
    return 0;
  } catch (...) {
    return 1;
  }
}

__attribute__((visibility("default"))) int32_t coco_spm_vocab_size(void* processor) {
  return cast(processor)->GetPieceSize();
}

__attribute__((visibility("default"))) int32_t coco_spm_special_id(void* processor, int which) {
  auto* p = cast(processor);
  switch (which) {
    case 0:
      return p->unk_id();
    case 1:
      return p->bos_id();
    case 2:
      return p->eos_id();
    case 3:
      return p->pad_id();
    default:
      return -1;
  }
}

__attribute__((visibility("default"))) void coco_spm_id_to_piece(void* processor, int32_t id,
                                                                 coco_spm_text_sink out,
                                                                 void* ctx) {
  const std::string& piece = cast(processor)->IdToPiece(id);
  out(ctx, piece.data(), piece.size());
}
}
