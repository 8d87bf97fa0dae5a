// The sweep runner (see sweep.h): the grid, the runs as child processes of coco-train, and
// the summary of their reports.
#include "coco/experiment/sweep.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <numeric>

#include <fmt/format.h>

#include "coco/common/atomic_file.h"
#include "coco/common/error.h"

namespace fs = std::filesystem;

namespace coco {

namespace {

// Splits at `sep` outside brackets, so that "[5,10],[20]" is two values.
std::vector<std::string> split_outside_brackets(const std::string& text, char sep) {
  std::vector<std::string> parts(1);
  int depth = 0;
  for (const char c : text) {
    depth += (c == '[' || c == '{') - (c == ']' || c == '}');
    if (c == sep && depth == 0) {
      parts.emplace_back();
    } else {
      parts.back() += c;
    }
  }
  return parts;
}

// A value as it can stand in a directory name.
std::string path_safe(std::string s) {
  for (char& c : s) {
    if (c == '/' || c == ' ' || c == '"' || c == '\\') c = '_';
  }
  return s;
}

}  // namespace

std::pair<std::string, std::vector<std::string>> parse_grid(const std::string& text) {
  const auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size())
    throw ConfigError("--set-grid " + text + ": expected KEY=A,B,...");
  auto values = split_outside_brackets(text.substr(eq + 1), ',');
  for (const auto& v : values) {
    if (v.empty()) throw ConfigError("--set-grid " + text + ": an empty value");
  }
  return {text.substr(0, eq), values};
}

std::pair<std::string, std::vector<std::string>> parse_variant(const std::string& text) {
  const auto eq = text.find('=');
  const std::string name = text.substr(0, eq);
  const bool ok_name = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
  if (eq == std::string::npos || !ok_name)
    throw ConfigError("--variant " + text +
                      ": expected NAME=KEY=VALUE;KEY=VALUE (NAME of letters, digits, _ - .)");
  std::vector<std::string> overrides;
  if (eq + 1 < text.size()) {
    for (auto& o : split_outside_brackets(text.substr(eq + 1), ';')) {
      if (o.find('=') == std::string::npos || o.front() == '=')
        throw ConfigError("--variant " + text + ": '" + o + "' is not KEY=VALUE");
      overrides.push_back(std::move(o));
    }
  }
  return {name, overrides};
}

std::vector<SweepCell> sweep_cells(const SweepOptions& options) {
  if (options.configs.empty()) throw ConfigError("coco-sweep: no --config");
  std::vector<SweepCell> cells;
  for (const auto& config : options.configs) {
    cells.push_back({fs::path(config).stem().string(),
                     {{"config", fs::path(config).stem().string()}},
                     config,
                     {}});
  }
  auto extend = [&](const std::string& axis, const std::vector<std::string>& values,
                    const auto& apply) {
    std::vector<SweepCell> next;
    for (const auto& cell : cells) {
      for (const auto& v : values) {
        SweepCell c = cell;
        c.axes.emplace_back(axis, v);
        apply(c, v);
        next.push_back(std::move(c));
      }
    }
    cells = std::move(next);
  };
  for (const auto& [key, values] : options.grid) {
    extend(key, values, [&, &key = key](SweepCell& c, const std::string& v) {
      c.name += "+" + path_safe(key + "=" + v);
      c.overrides.push_back(key + "=" + v);
    });
  }
  if (!options.variants.empty()) {
    std::vector<std::string> names;
    for (const auto& v : options.variants) names.push_back(v.first);
    extend("variant", names, [&](SweepCell& c, const std::string& name) {
      c.name += "+" + name;
      const auto& overrides =
          std::find_if(options.variants.begin(), options.variants.end(), [&](const auto& v) {
            return v.first == name;
          })->second;
      for (const auto& o : overrides) {
        if (o.rfind("config=", 0) == 0) {
          c.config = o.substr(7);
        } else {
          c.overrides.push_back(o);
        }
      }
    });
  }
  std::map<std::string, int> seen;
  for (const auto& c : cells) {
    if (seen[c.name]++ > 0) throw ConfigError("coco-sweep: two cells are named " + c.name);
  }
  return cells;
}

namespace {

std::string run_dir(const SweepOptions& o, const SweepCell& c, int64_t seed) {
  return (fs::path(o.out_dir) / c.name / ("seed" + std::to_string(seed))).string();
}

std::vector<std::string> train_args(const SweepOptions& o, const SweepCell& c, int64_t seed) {
  std::vector<std::string> args = {"--config", c.config};
  for (const auto* list : {&o.overrides, &c.overrides}) {
    for (const auto& s : *list) args.insert(args.end(), {"--set", s});
  }
  args.insert(args.end(), {"--set", "seed=" + std::to_string(seed), "--set",
                           "output_dir=" + run_dir(o, c, seed), "--resume"});
  return args;
}

std::string train_binary(const SweepOptions& o) {
  const std::string bin =
      !o.train_binary.empty()
          ? o.train_binary
          : (fs::read_symlink("/proc/self/exe").parent_path() / "coco-train").string();
  if (::access(bin.c_str(), X_OK) != 0)
    throw Error(bin + ": no coco-train to run (build it, or name it with --train-binary)");
  return bin;
}

std::atomic<bool> g_stop{false};
extern "C" void on_stop(int) { g_stop = true; }

// Starts coco-train with `args`, its output appended to `log_file`.
pid_t start(const std::string& bin, const std::vector<std::string>& args,
            const std::string& log_file) {
  std::vector<char*> argv = {const_cast<char*>(bin.c_str())};
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const int fd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(log_file + ": cannot open: " + std::strerror(errno));
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execv(bin.c_str(), argv.data());
    std::fprintf(stderr, "coco-sweep: cannot run %s: %s\n", bin.c_str(), std::strerror(errno));
    ::_exit(127);
  }
  ::close(fd);
  if (pid < 0) throw Error(std::string("coco-sweep: fork failed: ") + std::strerror(errno));
  return pid;
}

std::string describe_exit(int status) {
  if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("signal ") + strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

// "axis=value,...": the axis values that make a cell's baseline (defined with the summary).
std::vector<std::pair<std::string, std::string>> parse_baseline(
    const std::string& text, const std::vector<SweepCell>& cells);

struct Pending {
  const SweepCell* cell;
  int64_t seed;
};

// The (cell, seed) runs without a report; ConfigError when a run directory was made by
// other arguments (resuming it would mix two experiments).
std::vector<Pending> pending_runs(const SweepOptions& o, const std::vector<SweepCell>& cells,
                                  std::ostream& log) {
  std::vector<Pending> todo;
  for (const auto& c : cells) {
    for (const int64_t seed : o.seeds) {
      const fs::path dir = run_dir(o, c, seed);
      const Json stamp = train_args(o, c, seed);
      const fs::path stamp_file = dir / "sweep.json";
      if (fs::exists(stamp_file)) {
        const Json found = read_json_file(stamp_file.string());
        if (found != stamp)
          throw ConfigError(stamp_file.string() + ": this run was started with other arguments (" +
                            found.dump() + "); use another --out or remove " + dir.string());
      }
      if (fs::exists(dir / "report.json") && fs::exists(stamp_file)) {
        log << "[sweep] " << c.name << " seed " << seed << ": done before\n";
        continue;
      }
      todo.push_back({&c, seed});
    }
  }
  return todo;
}

}  // namespace

int64_t run_sweep(const SweepOptions& o, std::ostream& log) {
  const std::vector<SweepCell> cells = sweep_cells(o);
  parse_baseline(o.baseline, cells);  // a wrong baseline fails before hours of training
  const std::string bin = train_binary(o);
  const std::vector<Pending> todo = pending_runs(o, cells, log);
  struct sigaction sa {};
  sa.sa_handler = on_stop;  // the runs get the terminal's SIGINT too and keep their checkpoint
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  std::map<pid_t, std::pair<Pending, std::chrono::steady_clock::time_point>> running;
  int64_t failed = 0;
  size_t next = 0;
  while (next < todo.size() || !running.empty()) {
    while (!g_stop && next < todo.size() && static_cast<int64_t>(running.size()) < o.jobs) {
      const Pending p = todo[next++];
      const fs::path dir = run_dir(o, *p.cell, p.seed);
      fs::create_directories(dir);
      write_json_atomic((dir / "sweep.json").string(), Json(train_args(o, *p.cell, p.seed)));
      const std::string log_file = (dir / "train.log").string();
      running[start(bin, train_args(o, *p.cell, p.seed), log_file)] = {
          p, std::chrono::steady_clock::now()};
      log << fmt::format("[sweep] {}/{} {} seed {}: started, log {}\n", next, todo.size(),
                         p.cell->name, p.seed, log_file)
          << std::flush;
    }
    if (running.empty()) break;  // stopped before the rest started
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      throw Error(std::string("coco-sweep: waitpid: ") + std::strerror(errno));
    }
    const auto it = running.find(pid);
    if (it == running.end()) continue;
    const auto [p, started] = it->second;
    running.erase(it);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    failed += ok ? 0 : 1;
    log << fmt::format("[sweep] {} seed {}: {} after {:.0f} s{}\n", p.cell->name, p.seed,
                       ok ? "finished" : "FAILED (" + describe_exit(status) + ")", seconds,
                       ok ? "" : ", see " + run_dir(o, *p.cell, p.seed) + "/train.log")
        << std::flush;
  }
  if (g_stop) log << "[sweep] stopped; run the same command again to resume\n";
  return g_stop ? std::max<int64_t>(failed, 1) : failed;
}

namespace {

constexpr double kMissing = std::numeric_limits<double>::quiet_NaN();  // a metric a report lacks

struct Stats {
  double mean = 0, std = 0;
};

Stats stats(const std::vector<double>& v) {
  Stats s;
  if (v.empty()) return s;
  s.mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  if (v.size() > 1) {
    double ss = 0;
    for (const double x : v) ss += (x - s.mean) * (x - s.mean);
    s.std = std::sqrt(ss / static_cast<double>(v.size() - 1));
  }
  return s;
}

std::string mean_std(const std::vector<double>& v, const char* sign = "") {
  const Stats s = stats(v);
  return fmt::format(std::string("{:") + sign + ".4f} ± {:.4f}", s.mean, s.std);
}

// Metric names in reading order: HR@k then NDCG@k by ascending k, then the others.
std::vector<std::string> metric_order(const Json& metrics) {
  std::vector<std::string> names;
  for (const auto& [name, _] : metrics.items()) names.push_back(name);
  auto key = [](const std::string& n) {
    const auto at = n.find('@');
    const long k =
        at == std::string::npos ? 1L << 30 : std::strtol(n.c_str() + at + 1, nullptr, 10);
    return std::make_tuple(k, n.rfind("HR", 0) == 0 ? 0 : 1, n);
  };
  std::sort(names.begin(), names.end(),
            [&](const auto& a, const auto& b) { return key(a) < key(b); });
  return names;
}

// seed → report.json of the finished runs of a cell.
std::map<int64_t, Json> reports_of(const SweepOptions& o, const SweepCell& c) {
  std::map<int64_t, Json> out;
  for (const int64_t seed : o.seeds) {
    const fs::path file = fs::path(run_dir(o, c, seed)) / "report.json";
    if (fs::exists(file)) out[seed] = read_json_file(file.string());
  }
  return out;
}

// The metrics of a report under `where` ("/metrics" or "/sampled/metrics").
const Json& metrics_at(const Json& report, const std::string& where, const std::string& file) {
  const Json::json_pointer p(where);
  if (!report.contains(p) || !report[p].is_object())
    throw Error(file + ": expected an object at " + where);
  return report[p];
}

// The cell compared with `c`: its axes with the baseline's values.
const SweepCell* baseline_of(const SweepCell& c, const std::vector<SweepCell>& cells,
                             const std::vector<std::pair<std::string, std::string>>& base) {
  auto axes = c.axes;
  for (const auto& [axis, value] : base) {
    for (auto& a : axes) {
      if (a.first == axis) a.second = value;
    }
  }
  for (const auto& other : cells) {
    if (other.axes == axes) return &other;
  }
  return nullptr;
}

std::vector<std::pair<std::string, std::string>> parse_baseline(
    const std::string& text, const std::vector<SweepCell>& cells) {
  std::vector<std::pair<std::string, std::string>> base;
  if (text.empty()) return base;
  for (const auto& part : split_outside_brackets(text, ',')) {
    const auto eq = part.find('=');
    if (eq == std::string::npos) throw ConfigError("--baseline " + text + ": expected AXIS=VALUE");
    const std::string axis = part.substr(0, eq), value = part.substr(eq + 1);
    const bool known = std::any_of(cells.begin(), cells.end(), [&](const SweepCell& c) {
      return std::find(c.axes.begin(), c.axes.end(), std::make_pair(axis, value)) != c.axes.end();
    });
    if (!known)
      throw ConfigError("--baseline " + text + ": no cell has " + axis + " = " + value +
                        " (axes: config, the --set-grid keys, variant)");
    base.emplace_back(axis, value);
  }
  return base;
}

}  // namespace

std::string summarize_sweep(const SweepOptions& o) {
  const std::vector<SweepCell> cells = sweep_cells(o);
  const auto base = parse_baseline(o.baseline, cells);
  std::vector<std::map<int64_t, Json>> reports_by_cell;  // cells[i]'s reports, read once
  for (const auto& c : cells) reports_by_cell.push_back(reports_of(o, c));
  auto reports_for = [&](const SweepCell& c) -> const std::map<int64_t, Json>& {
    return reports_by_cell[static_cast<size_t>(&c - cells.data())];
  };
  std::string md;
  Json summary = Json::object();
  for (const auto& [where, title] :
       {std::pair<std::string, std::string>{"/metrics", "full ranking"},
        {"/sampled/metrics", "sampled negatives"}}) {
    std::vector<std::string> names;
    std::string rows;
    for (const auto& c : cells) {
      const auto& reports = reports_for(c);
      if (reports.empty()) continue;
      const std::string file = run_dir(o, c, reports.begin()->first) + "/report.json";
      if (names.empty()) names = metric_order(metrics_at(reports.begin()->second, where, file));
      std::string epochs;
      for (const auto& [seed, r] : reports)
        epochs +=
            (epochs.empty() ? "" : ",") + r.value("/best_epoch"_json_pointer, Json(-1)).dump();
      rows += fmt::format("| {} | {} | {} |", c.name, reports.size(), epochs);
      for (const auto& m : names) {
        std::vector<double> v;
        for (const auto& [seed, r] : reports)
          v.push_back(metrics_at(r, where, file).value(m, kMissing));
        rows += " " + mean_std(v) + " |";
        summary[c.name][where.substr(1)][m] = {{"mean", stats(v).mean}, {"std", stats(v).std}};
      }
      rows += "\n";
    }
    if (names.empty()) continue;
    md += "**Test split, " + title + "** (mean ± std over seeds; " + o.out_dir + ")\n\n";
    md += "| cell | seeds | best epochs |";
    for (const auto& m : names) md += " " + m + " |";
    md += "\n|---|---:|---|" + std::string() +
          [&] {
            std::string s;
            for (size_t i = 0; i < names.size(); ++i) s += "---:|";
            return s;
          }() +
          "\n" + rows + "\n";
  }
  if (!base.empty()) {
    md += "**Paired difference against " + o.baseline +
          "** (test, full ranking; cell − baseline, "
          "seed by seed, mean ± std; change of the means)\n\n| cell | seeds |";
    std::string rule = "|---|---:|";
    for (const auto& m : o.paired_metrics) {
      md += " " + m + " | change |";
      rule += "---:|---:|";
    }
    md += "\n" + rule + "\n";
    for (const auto& c : cells) {
      const SweepCell* b = baseline_of(c, cells, base);
      if (b == nullptr || b == &c) continue;
      const auto &ours = reports_for(c), &theirs = reports_for(*b);
      std::vector<int64_t> paired;
      for (const auto& [seed, _] : ours) {
        if (theirs.count(seed)) paired.push_back(seed);
      }
      if (paired.empty()) continue;
      md += fmt::format("| {} | {} |", c.name, paired.size());
      for (const auto& m : o.paired_metrics) {
        std::vector<double> diff, mine, other;
        for (const int64_t s : paired) {
          mine.push_back(ours.at(s)["metrics"].value(m, kMissing));
          other.push_back(theirs.at(s)["metrics"].value(m, kMissing));
          diff.push_back(mine.back() - other.back());
        }
        const double b_mean = stats(other).mean;
        md += " " + mean_std(diff, "+") + " | " +
              (b_mean > 0 ? fmt::format("{:+.2f}%", 100 * (stats(mine).mean - b_mean) / b_mean)
                          : std::string("")) +
              " |";
        summary[c.name]["paired"][m] = {{"baseline", b->name},
                                        {"mean", stats(diff).mean},
                                        {"std", stats(diff).std},
                                        {"seeds", paired}};
      }
      md += "\n";
    }
  }
  if (!md.empty()) {
    fs::create_directories(o.out_dir);
    write_file_atomic((fs::path(o.out_dir) / "summary.md").string(), md);
    write_json_atomic((fs::path(o.out_dir) / "summary.json").string(), summary);
  }
  return md;
}

}  // namespace coco
