#include "doppel/ros2/messages.h"

namespace doppel::ros2 {
namespace {

void Put(const Time& t, CdrWriter& w) {
  w.I32(t.sec);
  w.U32(t.nanosec);
}
void Put(const Header& h, CdrWriter& w) {
  Put(h.stamp, w);
  w.String(h.frame_id);
}
void Put(const Vector3& v, CdrWriter& w) {
  w.F64(v.x);
  w.F64(v.y);
  w.F64(v.z);
}
void Put(const Quaternion& q, CdrWriter& w) {
  w.F64(q.x);
  w.F64(q.y);
  w.F64(q.z);
  w.F64(q.w);
}
void Put(const Pose& p, CdrWriter& w) {
  Put(p.position, w);
  Put(p.orientation, w);
}

Status Get(CdrReader& r, Time& t) {
  DOPPEL_RETURN_IF_ERROR(r.I32(t.sec, "stamp.sec"));
  return r.U32(t.nanosec, "stamp.nanosec");
}
Status Get(CdrReader& r, Header& h) {
  DOPPEL_RETURN_IF_ERROR(Get(r, h.stamp));
  return r.String(h.frame_id, "header.frame_id");
}
Status Get(CdrReader& r, Vector3& v) {
  DOPPEL_RETURN_IF_ERROR(r.F64(v.x, "x"));
  DOPPEL_RETURN_IF_ERROR(r.F64(v.y, "y"));
  return r.F64(v.z, "z");
}
Status Get(CdrReader& r, Quaternion& q) {
  DOPPEL_RETURN_IF_ERROR(r.F64(q.x, "x"));
  DOPPEL_RETURN_IF_ERROR(r.F64(q.y, "y"));
  DOPPEL_RETURN_IF_ERROR(r.F64(q.z, "z"));
  return r.F64(q.w, "w");
}
Status Get(CdrReader& r, Pose& p) {
  DOPPEL_RETURN_IF_ERROR(Get(r, p.position));
  return Get(r, p.orientation);
}
Status Get(CdrReader& r, Twist& t) {
  DOPPEL_RETURN_IF_ERROR(Get(r, t.linear));
  return Get(r, t.angular);
}

template <typename M, typename F>
Status DecodeWith(std::string_view cdr, M& m, F fields) {
  auto reader = CdrReader::Open(cdr);
  if (!reader.ok()) return reader.status();
  m = M{};
  return fields(*reader);
}

}  // namespace

Time ToRosTime(TimeNs ns) {
  int64_t sec = ns / 1'000'000'000;
  int64_t nsec = ns % 1'000'000'000;
  if (nsec < 0) {
    nsec += 1'000'000'000;
    --sec;
  }
  return {static_cast<int32_t>(sec), static_cast<uint32_t>(nsec)};
}

TimeNs FromRosTime(const Time& t) { return static_cast<TimeNs>(t.sec) * 1'000'000'000 + t.nanosec; }

void Encode(const JointState& m, CdrWriter& w) {
  Put(m.header, w);
  w.Strings(m.name);
  w.Doubles(m.position);
  w.Doubles(m.velocity);
  w.Doubles(m.effort);
}

void Encode(const Odometry& m, CdrWriter& w) {
  Put(m.header, w);
  w.String(m.child_frame_id);
  Put(m.pose, w);
  for (double c : m.pose_covariance) w.F64(c);
  Put(m.twist.linear, w);
  Put(m.twist.angular, w);
  for (double c : m.twist_covariance) w.F64(c);
}

void Encode(const Twist& m, CdrWriter& w) {
  Put(m.linear, w);
  Put(m.angular, w);
}

void Encode(const Path& m, CdrWriter& w) {
  Put(m.header, w);
  w.U32(static_cast<uint32_t>(m.poses.size()));
  for (const auto& p : m.poses) {
    Put(p.header, w);
    Put(p.pose, w);
  }
}

void Encode(const TFMessage& m, CdrWriter& w) {
  w.U32(static_cast<uint32_t>(m.transforms.size()));
  for (const auto& t : m.transforms) {
    Put(t.header, w);
    w.String(t.child_frame_id);
    Put(t.translation, w);
    Put(t.rotation, w);
  }
}

void Encode(const DiagnosticArray& m, CdrWriter& w) {
  Put(m.header, w);
  w.U32(static_cast<uint32_t>(m.status.size()));
  for (const auto& s : m.status) {
    w.U8(s.level);
    w.String(s.name);
    w.String(s.message);
    w.String(s.hardware_id);
    w.U32(static_cast<uint32_t>(s.values.size()));
    for (const auto& kv : s.values) {
      w.String(kv.key);
      w.String(kv.value);
    }
  }
}

void Encode(const Clock& m, CdrWriter& w) { Put(m.clock, w); }

Status Decode(std::string_view cdr, JointState& m) {
  return DecodeWith(cdr, m, [&](CdrReader& r) {
    DOPPEL_RETURN_IF_ERROR(Get(r, m.header));
    DOPPEL_RETURN_IF_ERROR(r.Strings(m.name, "name"));
    DOPPEL_RETURN_IF_ERROR(r.Doubles(m.position, "position"));
    DOPPEL_RETURN_IF_ERROR(r.Doubles(m.velocity, "velocity"));
    return r.Doubles(m.effort, "effort");
  });
}

Status Decode(std::string_view cdr, Odometry& m) {
  return DecodeWith(cdr, m, [&](CdrReader& r) {
    DOPPEL_RETURN_IF_ERROR(Get(r, m.header));
    DOPPEL_RETURN_IF_ERROR(r.String(m.child_frame_id, "child_frame_id"));
    DOPPEL_RETURN_IF_ERROR(Get(r, m.pose));
    for (double& c : m.pose_covariance) DOPPEL_RETURN_IF_ERROR(r.F64(c, "pose.covariance"));
    DOPPEL_RETURN_IF_ERROR(Get(r, m.twist));
    for (double& c : m.twist_covariance) DOPPEL_RETURN_IF_ERROR(r.F64(c, "twist.covariance"));
    return Status::Ok();
  });
}

Status Decode(std::string_view cdr, Twist& m) {
  return DecodeWith(cdr, m, [&](CdrReader& r) { return Get(r, m); });
}

Status Decode(std::string_view cdr, TFMessage& m) {
  return DecodeWith(cdr, m, [&](CdrReader& r) {
    uint32_t n = 0;
    DOPPEL_RETURN_IF_ERROR(r.Count(n, 4 + 8 + 4 + 56 + 4, "transforms"));
    m.transforms.resize(n);
    for (auto& t : m.transforms) {
      DOPPEL_RETURN_IF_ERROR(Get(r, t.header));
      DOPPEL_RETURN_IF_ERROR(r.String(t.child_frame_id, "child_frame_id"));
      DOPPEL_RETURN_IF_ERROR(Get(r, t.translation));
      DOPPEL_RETURN_IF_ERROR(Get(r, t.rotation));
    }
    return Status::Ok();
  });
}

Status Decode(std::string_view cdr, DiagnosticArray& m) {
  return DecodeWith(cdr, m, [&](CdrReader& r) {
    DOPPEL_RETURN_IF_ERROR(Get(r, m.header));
    uint32_t n = 0;
    DOPPEL_RETURN_IF_ERROR(r.Count(n, 1 + 3 * 4 + 4, "status"));
    m.status.resize(n);
    for (auto& s : m.status) {
      DOPPEL_RETURN_IF_ERROR(r.U8(s.level, "status.level"));
      DOPPEL_RETURN_IF_ERROR(r.String(s.name, "status.name"));
      DOPPEL_RETURN_IF_ERROR(r.String(s.message, "status.message"));
      DOPPEL_RETURN_IF_ERROR(r.String(s.hardware_id, "status.hardware_id"));
      uint32_t k = 0;
      DOPPEL_RETURN_IF_ERROR(r.Count(k, 8, "status.values"));
      s.values.resize(k);
      for (auto& kv : s.values) {
        DOPPEL_RETURN_IF_ERROR(r.String(kv.key, "values.key"));
        DOPPEL_RETURN_IF_ERROR(r.String(kv.value, "values.value"));
      }
    }
    return Status::Ok();
  });
}

}  // namespace doppel::ros2
