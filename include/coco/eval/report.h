// Rendering evaluation results: Markdown tables for people, JSON for scripts.
// JSON layout: {"split", "protocol", "users", "metrics": {"HR@10": ...},
//               "groups": {"history_length": {"1-5": {"users", "metrics"}}, "item_popularity":
//               ...}}
#pragma once

#include <string>
#include <vector>

#include "coco/config/config.h"
#include "coco/eval/evaluator.h"

namespace coco {

Json metrics_to_json(const MetricTable& table);
Json report_to_json(const EvalReport& report);

/// One row per report (model, split, protocol, users, metrics...). `labels[i]` names
/// the model of reports[i] (e.g. "SASRec"); an empty label hides the column.
std::string markdown_table(const std::vector<EvalReport>& reports,
                           const std::vector<std::string>& labels = {});

/// The per-group breakdown of one report as a Markdown table.
std::string markdown_groups(const EvalReport& report);

}  // namespace coco
