// The binary FlatBuffers schema of twin_state.fbs (flatc --binary --schema), embedded at
// build time: what a Foxglove client or an MCAP reader needs to decode TwinState.
#pragma once

#include <string_view>

namespace doppel::schemas {

std::string_view TwinStateBfbs();

}  // namespace doppel::schemas
