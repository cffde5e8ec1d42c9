#include "client_command.h"

#include "doppel/core/clock.h"
#include "doppel/schemas/robot_events_generated.h"

namespace doppel::gateway {

eventstore::NewEvent CommandIssuedEvent(bool stop, const nlohmann::json& twist,
                                        std::string_view issued_by) {
  auto num = [&](const char* a, const char* b) {
    if (!twist.is_object() || !twist.contains(a) || !twist[a].is_object()) return 0.0;
    const auto& v = twist[a];
    return v.contains(b) && v[b].is_number() ? v[b].get<double>() : 0.0;
  };
  flatbuffers::FlatBufferBuilder fbb(128);
  const events::Twist t(
      events::Vec3(num("linear", "x"), num("linear", "y"), num("linear", "z")),
      events::Vec3(num("angular", "x"), num("angular", "y"), num("angular", "z")));
  fbb.Finish(events::CreateCommandIssued(
      fbb, stop ? events::CommandKind::Stop : events::CommandKind::Velocity, &t, 0, 0,
      fbb.CreateString(issued_by.data(), issued_by.size())));
  eventstore::NewEvent e;
  e.id = EventId::Random();
  e.type = "CommandIssued";
  e.payload.assign(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
  e.occurred_ns = WallNowNs();
  return e;
}

}  // namespace doppel::gateway
