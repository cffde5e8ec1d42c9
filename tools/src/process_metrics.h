// What each doppel process tells Prometheus: the metric families of the store, a twin and the
// DDS bridge, rendered from their counters at scrape time. `doppel store | twin | bridge-dds
// --metrics-port P` serve their own family; `doppel up` appends all three to the gateway's
// /metrics. Names are doppel_<process>_..., counters end in _total; the list is in README
// ("Metrics") and deploy/grafana/doppel.json queries them.
#pragma once

#include <cstdint>
#include <optional>

#include "doppel/bridges/dds_egress.h"
#include "doppel/bridges/dds_ingest.h"
#include "doppel/core/metrics.h"
#include "doppel/eventstore/event_log.h"
#include "doppel/eventstore/store_server.h"
#include "doppel/twins/twin_service.h"

namespace doppel::tools {

void RenderStoreMetrics(MetricsPage& page, const eventstore::EventLog& log,
                        const eventstore::StoreServer& server);

// `store_next_position`: the store's next position, for the lag gauge (nullopt: the store
// did not answer, and the gauge is left out rather than reported wrong).
void RenderTwinMetrics(MetricsPage& page, const twins::TwinService& twin,
                       std::optional<uint64_t> store_next_position);

// `egress` may be null (a bridge that only ingests).
void RenderBridgeMetrics(MetricsPage& page, const dds::DdsIngest& ingest,
                         const dds::DdsEgress* egress);

}  // namespace doppel::tools
