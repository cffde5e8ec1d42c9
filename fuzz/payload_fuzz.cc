// Fuzzes the payload registry: verification, the value rules, and JSON both ways. Input
// format: fuzz_inputs.h (a type selector byte, then the payload).
//
// What must hold for a payload that verifies and keeps the value rules (what the event log
// stores): it renders as strict JSON; that JSON parses back into a payload of the same type,
// which verifies, keeps the rules and renders as the same values. The text may differ in one
// way: a scalar field stored with its default value is printed, and the payload made from
// that JSON leaves it out (FlatBuffers omits defaults). The second rendering is then a fixed
// point.
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "doppel/schemas/payload_rules.h"
#include "doppel/schemas/payloads.h"
#include "fuzz_inputs.h"

namespace {

std::string_view View(const std::vector<uint64_t>& aligned, size_t size) {
  return std::string_view(reinterpret_cast<const char*>(aligned.data()), size);
}

// `bytes` in 8-aligned storage, as a payload read out of a std::string is.
std::vector<uint64_t> Aligned(std::string_view bytes) {
  std::vector<uint64_t> out((bytes.size() + 7) / 8);
  if (!bytes.empty()) std::memcpy(out.data(), bytes.data(), bytes.size());
  return out;
}

// True when `after` holds the values of `before`, allowing scalar fields of `before` to be
// missing from `after` (written with their default value, omitted when parsed back).
bool SameValues(const nlohmann::json& before, const nlohmann::json& after) {
  if (before.is_object() && after.is_object()) {
    for (const auto& [key, value] : before.items()) {
      if (!after.contains(key)) {
        if (value.is_object() || value.is_array()) return false;
        continue;
      }
      if (!SameValues(value, after[key])) return false;
    }
    for (const auto& [key, value] : after.items()) {
      if (!before.contains(key)) return false;
    }
    return true;
  }
  if (before.is_array() && after.is_array()) {
    if (before.size() != after.size()) return false;
    for (size_t i = 0; i < before.size(); ++i) {
      if (!SameValues(before[i], after[i])) return false;
    }
    return true;
  }
  return before == after;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace doppel;
  if (size == 0) return 0;
  const std::string_view type = fuzz::PayloadTypeName(data[0]);
  const std::vector<uint64_t> aligned =
      Aligned(std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
  const std::string_view payload = View(aligned, size - 1);

  if (!schemas::VerifyPayload(type, payload).ok()) return 0;
  const bool keeps_rules = schemas::CheckPayloadValues(type, payload).ok();
  auto json = schemas::PayloadToJson(type, payload);
  // A verified payload that breaks the rules (NaN, bad UTF-8) may be unprintable; one the
  // log would store must print.
  if (!keeps_rules) return 0;
  DOPPEL_FUZZ_CHECK(json.ok(), "%.*s payload keeps the rules but has no JSON: %s",
                    static_cast<int>(type.size()), type.data(), json.status().ToString().c_str());
  if (schemas::FindPayloadType(type) == nullptr) return 0;  // opaque: {"base64":...}

  auto reparsed = schemas::PayloadFromJson(type, *json);
  DOPPEL_FUZZ_CHECK(reparsed.ok(), "%.*s JSON does not parse back: %s\n%s",
                    static_cast<int>(type.size()), type.data(),
                    reparsed.status().ToString().c_str(), json->c_str());
  const std::vector<uint64_t> again_aligned = Aligned(*reparsed);
  const std::string_view again = View(again_aligned, reparsed->size());
  DOPPEL_FUZZ_CHECK(schemas::VerifyPayload(type, again).ok(),
                    "%.*s payload from JSON does not verify\n%s", static_cast<int>(type.size()),
                    type.data(), json->c_str());
  Status rules = schemas::CheckPayloadValues(type, again);
  DOPPEL_FUZZ_CHECK(rules.ok(), "%.*s payload from JSON breaks the rules: %s\n%s",
                    static_cast<int>(type.size()), type.data(), rules.ToString().c_str(),
                    json->c_str());
  auto json_again = schemas::PayloadToJson(type, again);
  DOPPEL_FUZZ_CHECK(json_again.ok(), "%.*s payload from JSON has no JSON: %s",
                    static_cast<int>(type.size()), type.data(),
                    json_again.status().ToString().c_str());
  const auto before = nlohmann::json::parse(*json, nullptr, /*allow_exceptions=*/false);
  const auto after = nlohmann::json::parse(*json_again, nullptr, /*allow_exceptions=*/false);
  DOPPEL_FUZZ_CHECK(!before.is_discarded() && !after.is_discarded(),
                    "%.*s payload JSON is not strict JSON:\n%s\n%s", static_cast<int>(type.size()),
                    type.data(), json->c_str(), json_again->c_str());
  DOPPEL_FUZZ_CHECK(SameValues(before, after), "%.*s JSON does not round-trip:\n%s\n%s",
                    static_cast<int>(type.size()), type.data(), json->c_str(), json_again->c_str());
  // The second rendering is canonical: another round changes nothing.
  auto third = schemas::PayloadFromJson(type, *json_again);
  DOPPEL_FUZZ_CHECK(third.ok(), "%.*s second JSON does not parse: %s",
                    static_cast<int>(type.size()), type.data(), third.status().ToString().c_str());
  const std::vector<uint64_t> third_aligned = Aligned(*third);
  auto json_third = schemas::PayloadToJson(type, View(third_aligned, third->size()));
  DOPPEL_FUZZ_CHECK(json_third.ok() && *json_third == *json_again,
                    "%.*s JSON is not a fixed point:\n%s\n%s", static_cast<int>(type.size()),
                    type.data(), json_again->c_str(),
                    json_third.ok() ? json_third->c_str() : json_third.status().ToString().c_str());
  return 0;
}
