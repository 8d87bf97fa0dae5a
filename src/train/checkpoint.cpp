// Checkpoint archive layout: "format", "meta" (JSON text), "model/<param>" tensors,
// "optimizer" sub-archive, "rng" tensor. The file is the libtorch archive followed by a
// 20-byte trailer: "COCOCRC1", the archive's length (u64) and its CRC-32 (u32), little-endian.
// libtorch only ever reads an archive whose checksum matched: its reader trusts what it reads,
// and a damaged archive can crash it (a finding of fuzz/checkpoint_target.cpp).
#include "coco/train/checkpoint.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include <zlib.h>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/serialize/archive.h>
#include <torch/torch.h>

#include "coco/common/atomic_file.h"
#include "coco/common/error.h"
#include "coco/ops/finite.h"

namespace coco {

namespace {

constexpr const char* kFormat = "coco-checkpoint-1";

std::string first_line(const std::exception& e) {
  std::string msg = e.what();
  if (auto* c10 = dynamic_cast<const c10::Error*>(&e)) msg = c10->what_without_backtrace();
  if (auto nl = msg.find('\n'); nl != std::string::npos) msg.resize(nl);
  return msg;
}

constexpr char kTrailerMagic[] = "COCOCRC1";
constexpr size_t kTrailerSize = 20;

void put_le(unsigned char* out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out[i] = static_cast<unsigned char>(value >> (8 * i));
}

uint64_t get_le(const unsigned char* in, int bytes) {
  uint64_t value = 0;
  for (int i = bytes - 1; i >= 0; --i) value = value << 8 | in[i];
  return value;
}

CheckpointError unreadable(const std::string& path, const std::string& why) {
  return CheckpointError(
      path + ": cannot read checkpoint (truncated or not a CoCo checkpoint: " + why + ")");
}

// The archive's length, once the trailer and the checksum of the bytes before it are right.
uint64_t checked_archive_length(std::FILE* f, const std::string& path) {
  unsigned char trailer[kTrailerSize];
  if (fseeko(f, 0, SEEK_END) != 0) throw unreadable(path, std::strerror(errno));
  const auto size = static_cast<uint64_t>(ftello(f));
  if (size < kTrailerSize || fseeko(f, static_cast<off_t>(size - kTrailerSize), SEEK_SET) != 0 ||
      std::fread(trailer, 1, kTrailerSize, f) != kTrailerSize ||
      std::memcmp(trailer, kTrailerMagic, 8) != 0) {
    throw unreadable(path, "no checksum trailer; written by an older CoCo, or cut short");
  }
  const uint64_t length = get_le(trailer + 8, 8);
  if (length != size - kTrailerSize) {
    throw unreadable(path, "the trailer gives " + std::to_string(length) +
                               " archive bytes, the file holds " +
                               std::to_string(size - kTrailerSize));
  }
  std::rewind(f);
  std::vector<unsigned char> chunk(1 << 20);
  uLong crc = crc32_z(0, Z_NULL, 0);
  for (uint64_t done = 0; done < length;) {
    const size_t n =
        std::fread(chunk.data(), 1, std::min<uint64_t>(chunk.size(), length - done), f);
    if (n == 0) throw unreadable(path, "read error");
    crc = crc32_z(crc, chunk.data(), n);
    done += n;
  }
  if (crc != get_le(trailer + 16, 4))
    throw unreadable(path, "checksum mismatch, the file is damaged");
  return length;
}

torch::serialize::InputArchive open_archive(const std::string& path) {
  std::shared_ptr<std::FILE> f(std::fopen(path.c_str(), "rb"), [](std::FILE* p) {
    if (p) std::fclose(p);
  });
  if (!f) throw unreadable(path, std::strerror(errno));
  const uint64_t length = checked_archive_length(f.get(), path);
  torch::serialize::InputArchive ar;
  try {
    ar.load_from(
        [f, length](uint64_t pos, void* buf, size_t n) -> size_t {
          if (pos >= length) return 0;
          n = static_cast<size_t>(std::min<uint64_t>(n, length - pos));
          return fseeko(f.get(), static_cast<off_t>(pos), SEEK_SET) == 0
                     ? std::fread(buf, 1, n, f.get())
                     : 0;
        },
        [length] { return static_cast<size_t>(length); });
  } catch (const std::exception& e) {
    throw unreadable(path, first_line(e));
  }
  c10::IValue format;
  if (!ar.try_read("format", format) || !format.isString() || format.toStringRef() != kFormat) {
    throw CheckpointError(path + ": not a CoCo checkpoint (missing \"format\": \"" +
                          std::string(kFormat) + "\")");
  }
  return ar;
}

CheckpointMeta read_meta(const std::string& path, torch::serialize::InputArchive& ar) {
  c10::IValue meta;
  if (!ar.try_read("meta", meta) || !meta.isString()) {
    throw CheckpointError(path + ": checkpoint has no \"meta\" record");
  }
  try {
    const Json j = Json::parse(meta.toStringRef());
    return {j.at("config"), TrainState::from_json(j.at("state"))};
  } catch (const Json::exception& e) {
    throw CheckpointError(path + ": corrupt \"meta\" record: " + e.what());
  }
}

}  // namespace

Json TrainState::to_json() const {
  return {{"epoch", epoch},
          {"batch", batch},
          {"step", step},
          {"best_metric",
           best_metric == -std::numeric_limits<double>::infinity() ? Json() : Json(best_metric)},
          {"best_epoch", best_epoch},
          {"bad_evals", bad_evals},
          {"finished", finished},
          {"loss_sums", loss_sums},
          {"epoch_seconds", epoch_seconds}};
}

TrainState TrainState::from_json(const Json& j) {
  TrainState s;
  s.epoch = j.at("epoch");
  s.batch = j.at("batch");
  s.step = j.at("step");
  if (!j.at("best_metric").is_null()) s.best_metric = j.at("best_metric");
  s.best_epoch = j.at("best_epoch");
  s.bad_evals = j.at("bad_evals");
  s.finished = j.at("finished");
  s.loss_sums = j.at("loss_sums").get<std::map<std::string, double>>();
  s.epoch_seconds = j.at("epoch_seconds");
  return s;
}

void save_checkpoint(const std::string& path, const CheckpointMeta& meta,
                     const torch::nn::Module& model, const torch::optim::Optimizer* optimizer,
                     bool with_rng) {
  torch::serialize::OutputArchive ar;
  ar.write("format", c10::IValue(std::string(kFormat)));
  ar.write("meta",
           c10::IValue(Json{{"config", meta.config}, {"state", meta.state.to_json()}}.dump()));
  torch::serialize::OutputArchive weights;
  for (const auto& p : model.named_parameters()) weights.write(p.key(), p.value().detach().cpu());
  for (const auto& b : model.named_buffers())
    weights.write(b.key(), b.value().cpu(), /*is_buffer=*/true);
  ar.write("model", weights);
  if (optimizer) {
    torch::serialize::OutputArchive opt;
    optimizer->save(opt);
    ar.write("optimizer", opt);
  }
  if (with_rng) {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    ar.write("rng", gen.get_state());
  }
  const std::string failed = path + ": cannot write checkpoint (the previous one is kept): ";
  replace_file_atomic(path, [&](const std::string& tmp) {
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (f == nullptr) throw CheckpointError(failed + std::strerror(errno));
    // libtorch aborts the process when its writer sees a short write (it throws from a
    // destructor), so the writer always hears "written" and the first error is kept here.
    int error = 0;
    uint64_t length = 0;
    uLong crc = crc32_z(0, Z_NULL, 0);
    const auto write = [&](const void* data, size_t n) -> size_t {
      if (error == 0 && std::fwrite(data, 1, n, f) != n) error = errno != 0 ? errno : EIO;
      return n;
    };
    try {
      ar.save_to([&](const void* data, size_t n) -> size_t {
        crc = crc32_z(crc, static_cast<const Bytef*>(data), n);
        length += n;
        return write(data, n);
      });
    } catch (const std::exception& e) {
      std::fclose(f);
      throw CheckpointError(failed + first_line(e));
    }
    unsigned char trailer[kTrailerSize];
    std::memcpy(trailer, kTrailerMagic, 8);
    put_le(trailer + 8, length, 8);
    put_le(trailer + 16, crc, 4);
    write(trailer, kTrailerSize);
    if (std::fflush(f) != 0 && error == 0) error = errno;
    if (std::fclose(f) != 0 && error == 0) error = errno;
    if (error != 0) throw CheckpointError(failed + std::strerror(error));
  });
}

CheckpointMeta read_checkpoint_meta(const std::string& path) {
  auto ar = open_archive(path);
  return read_meta(path, ar);
}

CheckpointMeta load_checkpoint(const std::string& path, torch::nn::Module& model,
                               torch::optim::Optimizer* optimizer, bool restore_rng) {
  auto ar = open_archive(path);
  CheckpointMeta meta = read_meta(path, ar);
  torch::serialize::InputArchive weights;
  if (!ar.try_read("model", weights))
    throw CheckpointError(path + ": checkpoint has no model weights");
  torch::NoGradGuard no_grad;
  auto load = [&](const std::string& name, torch::Tensor target, bool is_buffer) {
    torch::Tensor value;
    if (!weights.try_read(name, value, is_buffer)) {
      throw CheckpointError(path + ": tensor 'model/" + name +
                            "' is missing (checkpoint of a different model?)");
    }
    if (value.sizes() != target.sizes()) {
      std::ostringstream msg;
      msg << path << ": tensor 'model/" << name << "' has shape " << value.sizes()
          << ", the model expects " << target.sizes();
      throw CheckpointError(msg.str());
    }
    if (const auto bad = describe_nonfinite(value); !bad.empty())
      throw CheckpointError(path + ": tensor 'model/" + name + "' holds " + bad);
    target.copy_(value);
  };
  for (auto& p : model.named_parameters()) load(p.key(), p.value(), false);
  for (auto& b : model.named_buffers()) load(b.key(), b.value(), true);
  if (optimizer) {
    torch::serialize::InputArchive opt;
    if (!ar.try_read("optimizer", opt))
      throw CheckpointError(path + ": checkpoint has no optimiser state");
    try {
      optimizer->load(opt);
    } catch (const std::exception& e) {
      throw CheckpointError(path + ": cannot restore optimiser state: " + first_line(e));
    }
  }
  if (restore_rng) {
    torch::Tensor rng;
    if (!ar.try_read("rng", rng)) throw CheckpointError(path + ": checkpoint has no RNG state");
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(rng);
  }
  return meta;
}

}  // namespace coco
