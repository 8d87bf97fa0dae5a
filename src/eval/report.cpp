// Markdown and JSON rendering of evaluation reports.
#include "coco/eval/report.h"

#include <cstdio>
#include <sstream>

namespace coco {

Json metrics_to_json(const MetricTable& table) {
  Json out = Json::object();
  for (const auto& [name, value] : table.values) out[name] = value;
  return out;
}

Json report_to_json(const EvalReport& report) {
  Json groups = Json::object();
  for (const auto& g : report.groups) {
    groups[group_family_name(g.family)][g.name] = {{"users", g.users},
                                                   {"metrics", metrics_to_json(g.metrics)}};
  }
  return {{"split", report.split},
          {"protocol", report.protocol},
          {"exclude_history", report.exclude_history},
          {"users", report.users},
          {"metrics", metrics_to_json(report.metrics)},
          {"groups", groups}};
}

namespace {

std::string fmt4(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}

}  // namespace

std::string markdown_table(const std::vector<EvalReport>& reports,
                           const std::vector<std::string>& labels) {
  if (reports.empty()) return "";
  const bool with_label = !labels.empty();
  std::ostringstream out;
  out << "|" << (with_label ? " model |" : "") << " split | protocol | users |";
  for (const auto& [name, v] : reports[0].metrics.values) out << " " << name << " |";
  out << "\n|" << (with_label ? "---|" : "") << "---|---|---:|";
  for (size_t i = 0; i < reports[0].metrics.values.size(); ++i) out << "---:|";
  out << "\n";
  for (size_t r = 0; r < reports.size(); ++r) {
    const auto& rep = reports[r];
    out << "|" << (with_label ? " " + labels[r] + " |" : "") << " " << rep.split << " | "
        << rep.describe_protocol() << " | " << rep.users << " |";
    for (const auto& [name, v] : rep.metrics.values) out << " " << fmt4(v) << " |";
    out << "\n";
  }
  return out.str();
}

std::string markdown_groups(const EvalReport& report) {
  std::ostringstream out;
  out << "| group | users |";
  for (const auto& [name, v] : report.metrics.values) out << " " << name << " |";
  out << "\n|---|---:|";
  for (size_t i = 0; i < report.metrics.values.size(); ++i) out << "---:|";
  out << "\n";
  for (const auto& g : report.groups) {
    out << "| " << (g.family == GroupFamily::kHistoryLength ? "history " : "target ") << g.name
        << " | " << g.users << " |";
    for (const auto& [name, v] : g.metrics.values) out << " " << fmt4(v) << " |";
    out << "\n";
  }
  return out.str();
}

}  // namespace coco
