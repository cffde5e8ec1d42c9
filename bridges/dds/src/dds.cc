#include "doppel/bridges/dds.h"

#include <fmt/format.h>

#include <cstdlib>
#include <mutex>
#include <set>
#include <vector>

#include "loopback_xml.h"

namespace doppel::dds {
namespace {

Status Check(dds_return_t rc, std::string_view what) {
  if (rc >= 0) return Status::Ok();
  return Status::Unavailable(fmt::format("{}: {}", what, dds_strretcode(rc)));
}

dds_qos_t* MakeQos(const QosSpec& spec) {
  dds_qos_t* qos = dds_create_qos();
  dds_qset_reliability(qos, spec.reliable ? DDS_RELIABILITY_RELIABLE : DDS_RELIABILITY_BEST_EFFORT,
                       DDS_MSECS(100));
  dds_qset_durability(
      qos, spec.transient_local ? DDS_DURABILITY_TRANSIENT_LOCAL : DDS_DURABILITY_VOLATILE);
  dds_qset_history(qos, DDS_HISTORY_KEEP_LAST, spec.depth);
  if (spec.transient_local) {
    dds_qset_durability_service(qos, 0, DDS_HISTORY_KEEP_LAST, 1, DDS_LENGTH_UNLIMITED,
                                DDS_LENGTH_UNLIMITED, DDS_LENGTH_UNLIMITED);
  }
  return qos;
}

}  // namespace

// deploy/dds/loopback.xml, embedded by the build (loopback_xml.h): the file others point
// CYCLONEDDS_URI at is the configuration doppel uses by default.
std::string_view LoopbackConfig() { return kLoopbackXml; }

Entity::~Entity() {
  if (handle_ > 0) dds_delete(handle_);
}

Entity& Entity::operator=(Entity&& other) noexcept {
  if (this != &other) {
    if (handle_ > 0) dds_delete(handle_);
    handle_ = other.handle_;
    other.handle_ = 0;
  }
  return *this;
}

Result<Participant> Participant::Create(uint32_t domain_id, std::string config) {
  static std::mutex mu;
  static std::set<uint32_t> created;  // domains live for the whole process
  {
    std::lock_guard lock(mu);
    if (!created.count(domain_id)) {
      if (config.empty()) {
        const char* uri = std::getenv("CYCLONEDDS_URI");
        if (uri == nullptr || *uri == '\0') config = std::string(LoopbackConfig());
      }
      if (!config.empty()) {
        const dds_entity_t domain = dds_create_domain(domain_id, config.c_str());
        if (domain < 0 && domain != DDS_RETCODE_PRECONDITION_NOT_MET) {
          return Status::Unavailable(
              fmt::format("creating DDS domain {}: {}", domain_id, dds_strretcode(domain)));
        }
      }
      created.insert(domain_id);
    }
  }
  const dds_entity_t p = dds_create_participant(domain_id, nullptr, nullptr);
  if (p < 0) {
    return Status::Unavailable(
        fmt::format("creating DDS participant in domain {}: {}", domain_id, dds_strretcode(p)));
  }
  Participant participant;
  participant.participant_ = Entity(p);
  return participant;
}

Result<Writer> Writer::Create(const Participant& participant,
                              const dds_topic_descriptor_t* descriptor, const std::string& topic,
                              const QosSpec& qos, std::string_view user_data) {
  Writer w;
  const dds_entity_t t =
      dds_create_topic(participant.handle(), descriptor, topic.c_str(), nullptr, nullptr);
  if (t < 0) return Status::Unavailable(fmt::format("topic {}: {}", topic, dds_strretcode(t)));
  w.topic_ = Entity(t);
  dds_qos_t* q = MakeQos(qos);
  if (!user_data.empty()) dds_qset_userdata(q, user_data.data(), user_data.size());
  const dds_entity_t writer = dds_create_writer(participant.handle(), t, q, nullptr);
  dds_delete_qos(q);
  if (writer < 0)
    return Status::Unavailable(fmt::format("writer on {}: {}", topic, dds_strretcode(writer)));
  w.writer_ = Entity(writer);
  return w;
}

Status Writer::Write(const void* sample) {
  return Check(dds_write(writer_.handle(), sample), "dds_write");
}

int Writer::MatchedReaders() const {
  dds_publication_matched_status_t status{};
  if (dds_get_publication_matched_status(writer_.handle(), &status) < 0) return 0;
  return static_cast<int>(status.current_count);
}

Result<Reader> Reader::Create(const Participant& participant,
                              const dds_topic_descriptor_t* descriptor, const std::string& topic,
                              const QosSpec& qos, bool ignore_local) {
  Reader r;
  const dds_entity_t t =
      dds_create_topic(participant.handle(), descriptor, topic.c_str(), nullptr, nullptr);
  if (t < 0) return Status::Unavailable(fmt::format("topic {}: {}", topic, dds_strretcode(t)));
  r.topic_ = Entity(t);
  dds_qos_t* q = MakeQos(qos);
  if (ignore_local) dds_qset_ignorelocal(q, DDS_IGNORELOCAL_PARTICIPANT);
  const dds_entity_t reader = dds_create_reader(participant.handle(), t, q, nullptr);
  dds_delete_qos(q);
  if (reader < 0)
    return Status::Unavailable(fmt::format("reader on {}: {}", topic, dds_strretcode(reader)));
  r.reader_ = Entity(reader);
  DOPPEL_RETURN_IF_ERROR(r.Watch(participant));
  return r;
}

Result<Reader> Reader::DiscoverPublications(const Participant& participant) {
  Reader r;
  const dds_entity_t reader =
      dds_create_reader(participant.handle(), DDS_BUILTIN_TOPIC_DCPSPUBLICATION, nullptr, nullptr);
  if (reader < 0) {
    return Status::Unavailable(fmt::format("discovery reader: {}", dds_strretcode(reader)));
  }
  r.reader_ = Entity(reader);
  DOPPEL_RETURN_IF_ERROR(r.Watch(participant));
  return r;
}

Status Reader::Watch(const Participant& participant) {
  const dds_entity_t waitset = dds_create_waitset(participant.handle());
  const dds_entity_t condition = dds_create_readcondition(reader_.handle(), DDS_ANY_STATE);
  if (waitset < 0 || condition < 0) return Status::Unavailable("creating a DDS waitset");
  waitset_ = Entity(waitset);
  condition_ = Entity(condition);
  if (dds_waitset_attach(waitset, condition, 0) < 0) {
    return Status::Unavailable("attaching a DDS read condition");
  }
  return Status::Ok();
}

Result<int> Reader::Take(const std::function<void(const void* sample)>& on_sample,
                         std::chrono::milliseconds timeout, int max) {
  return Take([&](const void* sample, uint64_t) { on_sample(sample); }, timeout, max);
}

std::string Reader::PublicationUserData(uint64_t publication) const {
  dds_builtintopic_endpoint_t* endpoint =
      dds_get_matched_publication_data(reader_.handle(), publication);
  if (endpoint == nullptr) return "";
  std::string out;
  void* value = nullptr;
  size_t size = 0;
  if (endpoint->qos != nullptr && dds_qget_userdata(endpoint->qos, &value, &size) && value) {
    out.assign(static_cast<const char*>(value), size);
  }
  dds_free(value);
  dds_builtintopic_free_endpoint(endpoint);
  return out;
}

Result<int> Reader::Take(
    const std::function<void(const void* sample, uint64_t publication)>& on_sample,
    std::chrono::milliseconds timeout, int max) {
  const dds_return_t woke =
      dds_waitset_wait(waitset_.handle(), nullptr, 0, DDS_MSECS(timeout.count()));
  if (woke < 0) return Status::Unavailable(fmt::format("DDS wait: {}", dds_strretcode(woke)));
  if (woke == 0) return 0;
  std::vector<void*> samples(static_cast<size_t>(max), nullptr);  // null: Cyclone lends memory
  std::vector<dds_sample_info_t> infos(static_cast<size_t>(max));
  const dds_return_t n = dds_take(reader_.handle(), samples.data(), infos.data(),
                                  static_cast<size_t>(max), static_cast<uint32_t>(max));
  if (n < 0) return Status::Unavailable(fmt::format("dds_take: {}", dds_strretcode(n)));
  int handed = 0;
  for (dds_return_t i = 0; i < n; ++i) {
    if (!infos[i].valid_data) continue;
    on_sample(samples[i], infos[i].publication_handle);
    ++handed;
  }
  if (n > 0) dds_return_loan(reader_.handle(), samples.data(), n);
  return handed;
}

int Reader::MatchedWriters() const {
  dds_subscription_matched_status_t status{};
  if (dds_get_subscription_matched_status(reader_.handle(), &status) < 0) return 0;
  return static_cast<int>(status.current_count);
}

}  // namespace doppel::dds
