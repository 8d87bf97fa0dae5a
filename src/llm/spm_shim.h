// The C interface of libcoco_spm.so, the small shared library that holds SentencePiece.
// It is loaded with dlopen(RTLD_LOCAL | RTLD_DEEPBIND) so that sentencepiece's protobuf never
// meets libtorch's (see docs/ENVIRONMENT.md). Plain C types only; no torch, no C++ ABI.
#pragma once

#include <stddef.h>
#include <stdint.h>

extern "C" {

/// Receives a byte string (a decoded text, a piece, an error message).
typedef void (*coco_spm_text_sink)(void* ctx, const char* data, size_t size);
/// Receives token ids.
typedef void (*coco_spm_ids_sink)(void* ctx, const int32_t* ids, size_t count);

void* coco_spm_new(void);
void coco_spm_delete(void* processor);
/// Return 0 on success; on failure call `err` with the message and return non-zero.
int coco_spm_load_file(void* processor, const char* path, coco_spm_text_sink err, void* ctx);
int coco_spm_load_proto(void* processor, const char* data, size_t size, coco_spm_text_sink err,
                        void* ctx);
int coco_spm_encode(void* processor, const char* text, size_t size, coco_spm_ids_sink out,
                    void* ctx);
int coco_spm_decode(void* processor, const int32_t* ids, size_t count, coco_spm_text_sink out,
                    void* ctx);
int32_t coco_spm_vocab_size(void* processor);
/// which: 0 unk, 1 bos, 2 eos, 3 pad; -1 when absent.
int32_t coco_spm_special_id(void* processor, int which);
void coco_spm_id_to_piece(void* processor, int32_t id, coco_spm_text_sink out, void* ctx);
}
