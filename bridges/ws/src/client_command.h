// What an operator's client sends (a geometry_msgs/Twist-shaped JSON object on
// /<robot>/cmd_vel, anything on /<robot>/stop) becomes one CommandIssued event, the same way
// for Foxglove and rosbridge clients. The store's append check enforces doppel's limits.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

#include "doppel/eventstore/event_store.h"

namespace doppel::gateway {

// A Velocity command from `twist` ({"linear":{"x",..},"angular":{"z",..}}; missing or
// non-number members are 0), or a Stop when `stop`. `issued_by` is "<protocol>:<token name>".
eventstore::NewEvent CommandIssuedEvent(bool stop, const nlohmann::json& twist,
                                        std::string_view issued_by);

}  // namespace doppel::gateway
