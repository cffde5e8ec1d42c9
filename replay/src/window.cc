#include "doppel/replay/window.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <fnmatch.h>

#include <algorithm>

namespace doppel::replay {

Result<TimeNs> ParseMoment(std::string_view text, TimeNs now) {
  if (text == "now") return now;
  if (!text.empty() && (text[0] == '-' || text[0] == '+') && text.size() > 1 &&
      text.find_first_not_of("0123456789", 1) != std::string_view::npos) {
    auto d = ParseDurationNs(text.substr(1));
    if (!d.ok()) {
      return Status::InvalidArgument(
          fmt::format("bad moment '{}': {}", text, d.status().message()));
    }
    return text[0] == '-' ? now - *d : now + *d;
  }
  return ParseTime(text);
}

std::string_view RobotOfStream(std::string_view stream) {
  constexpr std::string_view kPrefix = "robot-";
  return stream.starts_with(kPrefix) ? stream.substr(kPrefix.size()) : std::string_view();
}

bool Window::AdmitsRobot(std::string_view robot) const {
  if (robots == "*") return true;
  const std::string id(robot);
  return fnmatch(robots.c_str(), id.c_str(), 0) == 0;
}

bool Window::Admits(const eventstore::RecordedEvent& e) const {
  const std::string_view robot = RobotOfStream(e.stream());
  if (robot.empty() ? robots != "*" : !AdmitsRobot(robot)) return false;
  return types.empty() || std::find(types.begin(), types.end(), e.type()) != types.end();
}

std::string Window::Describe() const {
  return fmt::format("{} .. {}, robots '{}', types {}", FormatTime(from),
                     to == eventstore::kTimeMax ? std::string("now") : FormatTime(to), robots,
                     types.empty() ? std::string("all") : fmt::format("{}", fmt::join(types, ",")));
}

Result<Window> MakeWindow(std::string_view from, std::string_view to, std::string robots,
                          std::vector<std::string> types, TimeNs now) {
  Window w;
  auto f = ParseMoment(from, now);
  if (!f.ok()) return f.status();
  auto t = ParseMoment(to, now);
  if (!t.ok()) return t.status();
  if (*f > *t) {
    return Status::InvalidArgument(
        fmt::format("empty window: --from {} is after --to {}", FormatTime(*f), FormatTime(*t)));
  }
  w.from = *f;
  w.to = *t;
  w.robots = robots.empty() ? "*" : std::move(robots);
  w.types = std::move(types);
  return w;
}

}  // namespace doppel::replay
